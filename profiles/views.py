from django.shortcuts import get_object_or_404

from cdp.core.services import audit_record
from cdp.core.views import CDPPageView, FilteredListView
from profiles import selectors
from profiles.filters import ProfileFilter
from profiles.models import Profile


class ProfileListView(FilteredListView):
    template_name = "profiles/profile_list.html"
    filterset_class = ProfileFilter
    permission_required = "profiles.view_profile"


class ProfileDetailView(CDPPageView):
    """The 360° view. Every view of it is audited."""

    template_name = "profiles/profile_detail.html"
    permission_required = "profiles.view_profile"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        profile = get_object_or_404(Profile, pk=self.kwargs["pk"])
        audit_record(actor=self.request.user, action="view", object_type="profiles.profile", object_id=profile.pk,
                     profile_id=profile.pk, summary="Viewed the profile page", fields=sorted(profile.traits),
                     request=self.request)
        context.update(
            profile=profile,
            identities=profile.identities.order_by("type", "value"),
            events=selectors.profile_timeline(profile=profile)[:50],
        )
        return context
