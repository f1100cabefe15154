"""The review queue: pairs the matching scored between the review and the auto-merge thresholds, side by side
with the evidence, and a decision per pair (merge, never merge, dismiss)."""

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views import View

from cdp.core.htmx import notify
from cdp.core.views import CDPPageView, CDPViewMixin
from profiles.models import MatchCandidate
from profiles.services import matching

REVIEW_PAGE_SIZE = 20
DECIDED_TOASTS = {"merge": "Merged the two profiles.", "never_merge": "These two will never be merged.",
                  "dismiss": "Dismissed; the pair stays apart."}


class ReviewQueueView(CDPPageView):
    template_name = "profiles/review_list.html"
    permission_required = "profiles.view_matchcandidate"
    partial = "results"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = Paginator(matching.review_queue(), REVIEW_PAGE_SIZE).get_page(self.request.GET.get("page"))
        context.update(
            page=page,
            items=[{"candidate": c, "fields": matching.candidate_fields(c)} for c in page.object_list],
            can_decide=self.request.user.has_perm("profiles.change_matchcandidate"),
        )
        return context


class CandidateDecideView(CDPViewMixin, View):
    """POST decision=merge|never_merge|dismiss. htmx gets an empty answer (the pair's row is swapped away), an
    HX-Trigger ``reviewDecided`` and a toast; a plain form post goes back to the queue with a message."""

    permission_required = "profiles.change_matchcandidate"

    def post(self, request, pk):
        candidate = get_object_or_404(MatchCandidate, pk=pk)
        decision = request.POST.get("decision", "")
        try:
            matching.candidate_decide(candidate=candidate, decision=decision, actor=request.user, request=request)
        except matching.CandidateDecisionError as exc:
            if request.htmx:
                response = HttpResponse(status=200)
                response["HX-Reswap"] = "none"  # the row stays; the toast says why
                return notify(request, response, str(exc), level="error")
            return notify(request, redirect("profiles:review"), str(exc), level="error")
        if request.htmx:
            return notify(request, HttpResponse(""), DECIDED_TOASTS[decision],
                          events={"reviewDecided": {"id": candidate.pk, "decision": decision}})
        return notify(request, redirect("profiles:review"), DECIDED_TOASTS[decision])
