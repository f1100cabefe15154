"""Insights: churn risk and predicted lifetime value, trained on the installation's own events (built through
observations_apply), written as insight computed traits, kept current when a profile changes, and explained."""

import random
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from profiles.insights import churn, clv
from profiles.insights.explain import profile_insights
from profiles.models import ComputedTrait, ComputedValue, InsightModel, Profile
from profiles.services import Observation, computed_values_refresh, observations_apply, profiles_merge
from profiles.services.insights import insight_run, insight_values_write, insights_run_all

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def values(key: str) -> dict[int, object]:
    trait = ComputedTrait.objects.get(key=key)
    return {v.profile_id: v.value for v in ComputedValue.objects.filter(trait=trait).select_related("trait")}


def order(email: str, days_ago: float, revenue: float, n: int) -> Observation:
    return Observation(identities=[("email", email)], timestamp=NOW - timedelta(days=days_ago), source="shop",
                       channel="shop", event_type="track", event_name="Order Completed",
                       properties={"revenue": revenue, "order_id": f"{email}-{n}"}, message_id=f"{email}-{n}")


def population(people: int = 320, seed: int = 7) -> dict[str, list[str]]:
    """Customers over 400 days: "loyal" ones order every 20-40 days up to now; "lapsed" ones did the same until
    they stopped, 20 to 330 days ago; "browsers" only viewed products. Returns the e-mails by kind."""
    rng = random.Random(seed)
    kinds: dict[str, list[str]] = {"loyal": [], "lapsed": [], "browser": []}
    observations = []
    for i in range(people):
        kind = rng.choices(("loyal", "lapsed", "browser"), (45, 45, 10))[0]
        email = f"p{i}@example.com"
        kinds[kind].append(email)
        if kind == "browser":
            observations.append(Observation(identities=[("email", email)], timestamp=NOW - timedelta(days=3),
                                            source="web", channel="web", event_type="track",
                                            event_name="Product Viewed", message_id=f"{email}-view"))
            continue
        gap, basket = rng.uniform(20, 40), rng.uniform(30, 120)
        stop = 0.0 if kind == "loyal" else rng.uniform(20, 330)
        day, n = rng.uniform(330, 400), 0
        while day > stop:
            observations.append(order(email, day, round(basket * rng.uniform(0.7, 1.3), 2), n))
            day -= gap * rng.uniform(0.6, 1.4)
            n += 1
    observations_apply(observations=observations)
    return kinds


def by_email(emails) -> list[int]:
    return list(Profile.objects.filter(identities__type="email", identities__value__in=emails)
                .values_list("pk", flat=True))


# --- the models, on arrays ------------------------------------------------------------------------------------------


def test_bg_nbd_recovers_the_parameters_of_simulated_customers():
    rng = np.random.default_rng(3)
    true = {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 2.5}
    n = 4000
    rate = rng.gamma(true["r"], 1 / true["alpha"], n)
    dropout = rng.beta(true["a"], true["b"], n)
    T = rng.uniform(30, 80, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rate[i])
            if t > T[i]:
                break
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < dropout[i]:
                break
    fitted = clv.bgnbd_fit(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert fitted[name] == pytest.approx(true[name], rel=0.35), name
    # The conditional expectation ranks as it should: a frequent recent buyer over one who stopped long ago.
    recent, stale = clv.expected_orders(fitted, 52, [10, 10], [50, 10], [52, 52])
    assert recent > stale > 0
    assert clv.probability_alive(fitted, [0], [0], [52])[0] == pytest.approx(1.0)


def test_gamma_gamma_shrinks_a_customers_mean_towards_the_population():
    rng = np.random.default_rng(5)
    x = rng.integers(1, 10, 3000)
    m = rng.gamma(20, 5, 3000)  # means around 100
    fitted = clv.gamma_gamma_fit(x, m)
    few, many = clv.expected_order_value(fitted, [1, 9], [400.0, 400.0], fallback=100.0)
    assert 100 < few < many < 400  # one order says less about the person than nine
    [nobody] = clv.expected_order_value(fitted, [0], [np.nan], fallback=100.0)
    assert nobody == pytest.approx(fitted["v"] * fitted["p"] / (fitted["q"] - 1))


def test_churn_contributions_are_the_models_own_arithmetic():
    rng = np.random.default_rng(1)
    raw = np.abs(rng.normal(5, 3, (600, len(churn.FEATURE_NAMES))))
    raw[:, churn.FEATURE_NAMES.index("unsubscribed")] = rng.integers(0, 2, 600)
    overdue = churn.FEATURE_NAMES.index("rhythm_overdue")
    churned = (raw[:, overdue] + rng.normal(0, 1, 600) > 5).astype(int)
    params = churn.fit(raw, churned)
    assert churn.auc(churned, churn.score(params, raw)) > 0.8
    row = raw[0]
    logit = sum(item["effect"] for item in churn.contributions(params, row)) + params["intercept"]
    assert 1 / (1 + np.exp(-logit)) == pytest.approx(churn.score(params, row.reshape(1, -1))[0])
    assert churn.contributions(params, row)[0]["feature"] == "rhythm_overdue" or abs(
        churn.contributions(params, row)[0]["effect"]) >= abs(
        next(i for i in churn.contributions(params, row) if i["feature"] == "rhythm_overdue")["effect"])
    assert churn.level(0.7) == "high" and churn.level(0.3) == "medium" and churn.level(0.1) == "low"


# --- the runs, on events ------------------------------------------------------------------------------------------


def test_churn_model_trains_on_a_time_split_and_scores_customers_only():
    kinds = population()
    run = insight_run(kind="churn")
    assert run.status == "ok" and run.method == "logistic_regression"
    assert run.metrics["auc"] > run.metrics["baseline_auc"] - 0.05 and run.metrics["auc"] > 0.75
    assert run.metrics["horizon_days"] == 90 and run.training_rows > 200
    risk, level = values("churn_risk"), values("churn_risk_level")
    assert set(risk) == set(level) == set(by_email(kinds["loyal"] + kinds["lapsed"]))  # browsers are no customers
    assert all(0 <= value <= 1 for value in risk.values())
    assert all(level[pk] == churn.level(value) for pk, value in risk.items())
    loyal = np.mean([risk[pk] for pk in by_email(kinds["loyal"])])
    lapsed = np.mean([risk[pk] for pk in by_email(kinds["lapsed"])])
    assert lapsed > loyal + 0.2


def test_too_little_history_gives_a_labelled_heuristic():
    population(people=40)
    run = insight_run(kind="churn")
    assert run.status == "heuristic" and run.method == "heuristic"
    assert "Too little history" in run.reason
    assert values("churn_risk")  # the heuristic still scores


def test_lifetime_value_is_evaluated_on_a_time_split_beside_the_historical_average():
    kinds = population()
    run = insight_run(kind="clv")
    assert run.status == "ok" and run.method == "bg_nbd_gamma_gamma"
    metrics = run.metrics
    assert metrics["evaluated"] and 165 <= metrics["holdout_days"] <= 200  # half of the history (330-400 days)
    for part in ("revenue", "baseline_revenue", "orders", "baseline_orders"):
        assert set(metrics[part]) == {"mae", "rmse", "total_error_percent"}
    clv_values, orders = values("predicted_clv_12m"), values("predicted_orders_12m")
    assert set(clv_values) == set(orders) == set(by_email(kinds["loyal"] + kinds["lapsed"]))
    assert all(value >= 0 for value in clv_values.values())
    loyal = np.mean([orders[pk] for pk in by_email(kinds["loyal"])])
    lapsed = np.mean([orders[pk] for pk in by_email(kinds["lapsed"])])
    assert loyal > 2 * lapsed  # loyal customers keep ordering; the lapsed are mostly gone


def test_a_new_order_moves_the_risk_at_once_and_the_explanation_names_the_factors():
    kinds = population()
    insights_run_all()
    email = max(kinds["lapsed"], key=lambda e: values("churn_risk")[by_email([e])[0]])
    [pk] = by_email([email])
    before = values("churn_risk")[pk]
    explained = profile_insights(profile=Profile.objects.get(pk=pk))
    assert explained["churn"]["risk"] == before and explained["churn"]["level"] == "high"
    assert explained["churn"]["factors"] and all(f["text"] for f in explained["churn"]["factors"])
    assert explained["churn"]["run"]["metrics"]["auc"] is not None
    assert explained["clv"]["detail"]["probability_active"] < 0.9
    observations_apply(observations=[order(email, 0.1, 80.0, 999), order(email, 0.05, 60.0, 1000)])
    computed_values_refresh(profile_ids=[pk])  # what the profile_changed task runs
    assert values("churn_risk")[pk] < before
    assert profile_insights(profile=Profile.objects.get(pk=pk))["clv"]["detail"]["probability_active"] > 0.9


def test_insight_values_follow_merges_and_full_runs_drop_stale_rows():
    population(people=60)
    a, b = Profile.objects.order_by("pk")[:2]
    insight_values_write(values={"churn_risk": {a.pk: 0.5, b.pk: 0.6}}, full=True)
    assert values("churn_risk") == {a.pk: 0.5, b.pk: 0.6}
    insight_values_write(values={"churn_risk": {a.pk: 0.4}}, full=True)
    assert values("churn_risk") == {a.pk: 0.4}
    profiles_merge(winner=a, loser=b, reason="manual")
    insight_values_write(values={"churn_risk": {a.pk: 0.3, b.pk: 0.9}}, full=False)
    assert values("churn_risk") == {a.pk: 0.3}  # a merged profile gets nothing
    ComputedTrait.objects.filter(key="churn_risk").update(enabled=False)
    insight_values_write(values={"churn_risk": {a.pk: 0.2}}, full=True)
    assert values("churn_risk") == {}


def test_a_failed_run_is_recorded_with_its_reason(settings):
    population(people=40)
    settings.INSIGHTS_CHURN_HORIZON_DAYS = "ninety"  # a misconfiguration
    with pytest.raises(ValueError):
        insight_run(kind="churn")
    run = InsightModel.objects.get(kind="churn")
    assert run.status == "failed" and "ninety" in run.reason and run.finished_at is not None
    with pytest.raises(ValueError):
        insight_run(kind="astrology")


def test_a_restriction_or_objection_keeps_the_person_out_of_the_insight_models(django_capture_on_commit_callbacks):
    from consent.services import request_complete, request_create, request_lift

    kinds = population()
    insight_run(kind="churn")
    email = kinds["lapsed"][0]
    [pk] = by_email([email])
    assert pk in values("churn_risk")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_create(kind="objection", identifier_type="email", identifier=email,
                                 verification_note="Signed letter, ID checked")
        request_complete(request=request)
    assert pk not in values("churn_risk") and pk not in values("churn_risk_level")  # profile_changed re-scored
    insight_run(kind="churn")
    assert pk not in values("churn_risk")  # and the nightly run leaves the person out
    with django_capture_on_commit_callbacks(execute=True):
        request_lift(request=request, reason="Objection withdrawn")
    assert pk in values("churn_risk")


def test_the_command_runs_the_models_once_and_lists_their_quality():
    from io import StringIO

    from django.core.management import call_command

    population()
    out = StringIO()
    call_command("insights", "--run", "--if-never", "--kind", "churn", "--kind", "clv", stdout=out)
    assert "churn: Trained (logistic_regression)" in out.getvalue() and "AUC" in out.getvalue()
    call_command("insights", "--run", "--if-never", "--kind", "churn", stdout=out)
    assert InsightModel.objects.filter(kind="churn").count() == 1  # ran already: nothing to do
    out = StringIO()
    call_command("insights", stdout=out)
    assert "recency alone" in out.getvalue() and "historical average" in out.getvalue()
