from cdp.core.views import CDPPageView
from consent import selectors


class PrivacyDashboardView(CDPPageView):
    template_name = "consent/dashboard.html"
    permission_required = "consent.view_purpose"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["purposes"] = selectors.purposes_with_rates()
        return context
