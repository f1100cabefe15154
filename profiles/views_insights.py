"""The insights UI: the Insights page (per kind of model the latest run, its quality beside the naive baseline, the
run history, "Run now", and how the scores are spread), the 360° panel "Insights" (churn risk with its top factors,
predicted value with its explanation, service sentiment, recommended products) and the distribution charts the
dashboard shows. Viewing follows profiles.view_computedvalue (the scores are computed trait values); running a model
needs profiles.add_insightmodel. Views are thin: the services train and score, profiles.insights.explain explains."""

from datetime import timedelta

from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views import View

from cdp.core.htmx import notify, render_page
from cdp.core.views import CDPPageView, CDPViewMixin
from profiles import selectors
from profiles.insights.explain import profile_insights
from profiles.models import ComputedTrait, InsightModel
from profiles.services.insights import insight_run_enqueue

TEMPLATE = "profiles/insights.html"
VIEW_PERMISSION = "profiles.view_computedvalue"
RUN_PERMISSION = "profiles.add_insightmodel"
HISTORY = 10
# A queued run that has not started after this long is no longer shown as queued (no worker took it).
QUEUED_FOR = timedelta(minutes=10)
# A run still "running" after this long is shown as such but no longer polled for (its worker may have died).
RUNNING_FOR = timedelta(hours=2)

# The insight traits charted on the Insights page (the dashboard registers some of them in ProfilesConfig.ready()).
CHARTS = [("churn_risk_level", "Churn risk level"), ("churn_risk", "Churn risk"),
          ("predicted_clv_12m", "Predicted 12-month value"), ("service_sentiment", "Service sentiment")]
LEVELS = ["low", "medium", "high"]  # the order of churn_risk_level (profiles.insights.churn.level)

# How the metrics of a run read: label, and whether a higher value is better (None: nearer to 0 is better).
METRIC_LABELS = {
    "auc": ("AUC", True), "mae": ("MAE", False), "rmse": ("RMSE", False),
    "total_error_percent": ("Error of the total (%)", None), "revenue": ("Revenue", None),
    "orders": ("Orders", None), "horizon_days": ("Churned after (days without an order)", None),
    "train_customers": ("Customers, training period", None), "test_customers": ("Customers, held-out period", None),
    "train_churn_rate": ("Churn rate, training period", None), "test_churn_rate": ("Churn rate, held-out period", None),
    "holdout_days": ("Held-out days", None), "customers": ("Customers", None),
    "actual_revenue_total": ("Actual revenue in the held-out days", None),
    "evaluated": ("Measured on a held-out period", None), "k": ("Products recommended per person (k)", None),
    "test_days": ("Held-out days", None), "test_people": ("People who bought in the held-out days", None),
    "test_purchases": ("Purchases in the held-out days", None),
    "train_interactions": ("Interactions before the cutoff", None), "products": ("Products", None),
    "affinities": ("Product pairs kept", None), "people": ("People with product events", None),
    "read_seconds": ("Seconds reading the events", None),
    "from_item_to_item": ("Share of people recommended from item to item", None),
}
HIGHER_IS_BETTER = ("auc", "hit_rate", "precision", "recall")
LOWER_IS_BETTER = ("mae", "rmse")


def _label(key: str) -> str:
    if key in METRIC_LABELS:
        return METRIC_LABELS[key][0]
    for prefix in ("hit_rate_at_", "precision_at_", "recall_at_"):
        if key.startswith(prefix):
            return f"{prefix[:-4].replace('_', ' ').capitalize()} @{key[len(prefix):]}"
    return key.replace("_", " ").capitalize()


def _text(value) -> str:
    """A metric value for reading: thousands separated, 3 to 4 significant digits for fractions."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.2f}" if abs(value) >= 10 else f"{value:.3f}"
    return str(value)


def _better(key: str, model, baseline) -> bool | None:
    """Whether the model's value beats the baseline's (None: not comparable)."""
    if not isinstance(model, int | float) or not isinstance(baseline, int | float):
        return None
    if key.startswith(HIGHER_IS_BETTER):
        return model > baseline
    if key.startswith(LOWER_IS_BETTER):
        return model < baseline
    if key == "total_error_percent":
        return abs(model) < abs(baseline)
    return None


def run_quality(metrics: dict) -> dict:
    """A run's metrics for reading: ``compared`` rows {label, model, baseline, better} for every measure that has a
    ``baseline_<key>`` beside it (nested ones such as CLV's revenue {mae, rmse, ...} row by row; values as text),
    ``baseline`` (what the baseline is), ``reason`` and ``details``: the other plain values as {label, value}. Works
    for metrics this page does not know by name."""
    metrics = metrics or {}
    compared, details, used = [], [], {"baseline", "reason"}
    for key, value in metrics.items():
        base_key = f"baseline_{key}"
        if key.startswith("baseline_") or base_key not in metrics:
            continue
        used.update({key, base_key})
        baseline = metrics[base_key]
        if isinstance(value, dict) or isinstance(baseline, dict):
            value, baseline = value or {}, baseline or {}
            for sub in dict.fromkeys([*value, *baseline]):
                compared.append({"label": f"{_label(key)}: {_label(sub)}", "model": _text(value.get(sub)),
                                 "baseline": _text(baseline.get(sub)),
                                 "better": _better(sub, value.get(sub), baseline.get(sub))})
        else:
            compared.append({"label": _label(key), "model": _text(value), "baseline": _text(baseline),
                             "better": _better(key, value, baseline)})
    for key, value in metrics.items():
        if key not in used and not isinstance(value, dict | list):
            details.append({"label": _label(key), "value": _text(value)})
    return {"compared": compared, "baseline": metrics.get("baseline", ""), "reason": metrics.get("reason", ""),
            "details": details}


def insight_distribution_chart(key: str, *, label: str = "Profiles") -> dict | None:
    """The chart data (components/chart.html) of how insight trait ``key`` is spread: churn levels low, medium, high
    in that order; numbers as a histogram. None when the trait does not exist or nobody has a value."""
    trait = ComputedTrait.objects.filter(key=key).first()
    if trait is None:
        return None
    distribution = selectors.computed_trait_distribution(trait=trait)
    if not distribution["total"]:
        return None
    if distribution["kind"] == "top":
        counts = {row["value"]: row["count"] for row in distribution["rows"]}
        labels = [level for level in LEVELS if level in counts] if key == "churn_risk_level" else list(counts)
        labels += [value for value in counts if value not in labels]
        values = [counts[value] for value in labels]
    else:
        labels, values = distribution["labels"], distribution["counts"]
    return {"labels": labels, "series": [{"key": "profiles", "label": label, "values": values}],
            "total": distribution["total"]}


def _queued(request) -> list[str]:
    """The kinds this page asked to run (``?queued=churn&since=...``) that have not started yet."""
    since = parse_datetime(request.GET.get("since", ""))
    kinds = [k for k in request.GET.getlist("queued") if k in InsightModel.Kind.values]
    if since is None or not kinds or timezone.now() - since > QUEUED_FOR:
        return []
    started = set(InsightModel.objects.filter(kind__in=kinds, started_at__gte=since)
                  .values_list("kind", flat=True))
    return [k for k in kinds if k not in started]


def insights_overview(queued=()) -> list[dict]:
    """Per kind: its latest run (any status), the run that scores now (the newest trained or heuristic one; it is
    not the latest when that failed or still runs), the quality of both, and the newest runs."""
    kinds = []
    for kind, label in InsightModel.Kind.choices:
        history = list(InsightModel.objects.filter(kind=kind)[:HISTORY])
        latest = history[0] if history else None
        scoring = next((r for r in history if r.status in InsightModel.SCORING), None)
        if scoring is None and latest is not None:
            scoring = InsightModel.objects.filter(kind=kind, status__in=[InsightModel.Status.OK,
                                                                         InsightModel.Status.HEURISTIC]).first()
        shown = scoring or latest
        running = latest is not None and latest.status == InsightModel.Status.RUNNING
        kinds.append({"kind": kind, "label": label, "latest": latest, "scoring": scoring, "history": history,
                      "quality": run_quality(shown.metrics) if shown else None, "running": running,
                      "stale": running and timezone.now() - latest.started_at > RUNNING_FOR,
                      "queued": kind in queued})
    return kinds


def insights_page_context(user, *, queued, since: str) -> dict:
    kinds = insights_overview(queued)
    return {"kinds": kinds, "queued": queued, "since": since,
            "busy": any((k["running"] and not k["stale"]) or k["queued"] for k in kinds),
            "can_run": user.has_perm(RUN_PERMISSION),
            "charts": [{"key": key, "title": title, "data": insight_distribution_chart(key)} for key, title in CHARTS]}


class InsightsView(CDPPageView):
    """The Insights page. htmx reloads the runs (``runs``) after "Run now", and every few seconds while a run is
    queued or running."""

    template_name = TEMPLATE
    permission_required = VIEW_PERMISSION

    def get(self, request, *args, **kwargs):
        if request.htmx and request.GET.get("part") == "runs":
            self.partial = "runs"
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(insights_page_context(self.request.user, queued=_queued(self.request),
                                             since=self.request.GET.get("since", "")))
        return context


class InsightRunView(CDPViewMixin, View):
    """POST: "Run now" for one kind (``kind``) or every kind: queues the run. htmx gets the runs again, showing the
    kind as queued until its run starts (then running, until it is done)."""

    permission_required = RUN_PERMISSION
    http_method_names = ["post"]

    def post(self, request, kind=None):
        if kind is not None and kind not in InsightModel.Kind.values:
            return HttpResponseBadRequest(f"Unknown insight kind {kind!r}.")
        since = timezone.now()
        insight_run_enqueue(kind=kind)
        message = f"{InsightModel.Kind(kind).label if kind else 'Every insight model'}: the run is queued."
        if not request.htmx:
            return notify(request, redirect("profiles:insights"), message)
        kinds = [kind] if kind else list(InsightModel.Kind.values)
        started = set(InsightModel.objects.filter(kind__in=kinds, started_at__gte=since)
                      .values_list("kind", flat=True))  # in the embedded default the run is done already
        context = insights_page_context(request.user, queued=[k for k in kinds if k not in started],
                                        since=since.isoformat())
        return notify(request, render_page(request, TEMPLATE, context, partial="runs"), message,
                      events={"insightsChanged": {"kind": kind}})


# --- the 360° panel (registered in ProfilesConfig.ready()) ----------------------------------------------------------


def insights_panel_context(profile, user) -> dict:
    """The 360° page's Insights panel: profile_insights, whether any churn or value run exists yet (to say why a
    part is empty), and the recommended products when the user may see products."""
    insights = profile_insights(profile=profile)
    runs = set(InsightModel.objects.filter(status__in=InsightModel.SCORING)
               .values_list("kind", flat=True).distinct())
    show_recommendations = user.has_perm("profiles.view_product")
    return {"insights": insights, "profile": profile,
            "churn_run": InsightModel.Kind.CHURN in runs, "clv_run": InsightModel.Kind.CLV in runs,
            "recommendations_run": InsightModel.Kind.RECOMMENDATIONS in runs,
            "show_recommendations": show_recommendations,
            "recommendations": (selectors.recommendations_for(profile_id=profile.pk, limit=5)
                                if show_recommendations else []),
            "can_run": user.has_perm(RUN_PERMISSION)}


def insights_panel_data(profile, user) -> dict:
    """The panel's data for the profile API (``insights``): profile_insights."""
    return profile_insights(profile=profile)
