"""Why a profile's insights are what they are, for the 360° page and the API: recomputed for the one profile from
the newest runs' stored parameters, so the explanation is the model's own arithmetic for that person now."""

from __future__ import annotations

import numpy as np
from django.utils import timezone

from profiles.insights import churn, clv
from profiles.insights.features import customers_at
from profiles.models import ComputedValue, InsightModel
from profiles.services.insights import insight_model_latest

TOP_FACTORS = 4


def _run_summary(run: InsightModel | None) -> dict | None:
    if run is None:
        return None
    return {"id": run.pk, "status": run.status, "method": run.method, "trained_at": run.finished_at or run.started_at,
            "metrics": run.metrics, "reason": run.reason}


def profile_insights(*, profile) -> dict:
    """{"churn", "clv", "sentiment"}: each with the stored value(s), the run that produced them and the reasons;
    ``None`` parts where the profile has no value (no customer, no run yet)."""
    stored = {v.trait.key: v.value for v in ComputedValue.objects.filter(
        profile=profile, trait__key__in=["churn_risk", "churn_risk_level", "predicted_clv_12m",
                                         "predicted_orders_12m", "service_sentiment"]).select_related("trait")}
    churn_run, clv_run = insight_model_latest(InsightModel.Kind.CHURN), insight_model_latest(InsightModel.Kind.CLV)
    need = (churn_run and "churn_risk" in stored) or (clv_run and "predicted_clv_12m" in stored)
    customers = customers_at(timezone.now(), profile_ids=[profile.pk]) if need else None
    answer = {"churn": None, "clv": None,
              "sentiment": {"score": stored["service_sentiment"]} if "service_sentiment" in stored else None}
    if churn_run and "churn_risk" in stored:
        factors = []
        if customers is not None and len(customers):
            raw = churn.raw_features(customers, typical_gap_days=churn_run.params.get("typical_gap_days"))[0]
            for item in churn.contributions(churn_run.params, raw)[:TOP_FACTORS]:
                if abs(item["effect"]) < 1e-6:
                    continue
                factors.append({**item, "text": churn.describe(item["feature"], item["value"]),
                                "direction": "raises" if item["effect"] > 0 else "lowers"})
        answer["churn"] = {"risk": stored["churn_risk"], "level": stored.get("churn_risk_level"),
                           "factors": factors, "run": _run_summary(churn_run)}
    if clv_run and "predicted_clv_12m" in stored:
        detail = {}
        if customers is not None and len(customers) and clv_run.params.get("method") == "bg_nbd_gamma_gamma":
            col = customers.column
            x, t_x, T, m = clv.summaries(col("first_order"), col("last_order"), col("order_days"), col("orders"),
                                         col("revenue"), customers.at.timestamp())
            params = clv_run.params
            detail = {
                "repeat_order_days": int(x[0]), "weeks_first_to_last_order": round(float(t_x[0]), 1),
                "weeks_since_first_order": round(float(T[0]), 1),
                "mean_order_value": None if np.isnan(m[0]) else round(float(m[0]), 2),
                "probability_active": round(float(clv.probability_alive(params["bg_nbd"], x, t_x, T)[0]), 3),
                "expected_order_value": round(float(clv.expected_order_value(
                    params["gamma_gamma"], x, m, fallback=params["mean_order_value"])[0]), 2)}
        answer["clv"] = {"value": stored["predicted_clv_12m"], "orders": stored.get("predicted_orders_12m"),
                         "detail": detail, "run": _run_summary(clv_run)}
    return answer
