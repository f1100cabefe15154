"""Where insights show: the Insights page (runs, quality beside the baseline, history, "Run now", distributions),
the 360° panel with its explanation and empty states, the insights API and the dashboard charts; who may see and
run them. The runs are made by insight_run on events built as tests/profiles/test_insights.py builds them."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from profiles.models import ComputedValue, InsightModel, Profile
from profiles.services.insights import insight_run
from profiles.views_insights import run_quality
from tests.profiles.test_computed_traits_views import csp_clean
from tests.profiles.test_insights import by_email, population

pytestmark = pytest.mark.django_db

PAGE = "/profiles/insights/"


@pytest.fixture
def login_as(client, make_user):
    def login(role):
        client.force_login(make_user(role))
        return client

    return login


def htmx(client, method, url, **kwargs):
    return getattr(client, method)(url, HTTP_HX_REQUEST="true", **kwargs)


def risk_of(pk):
    return ComputedValue.objects.get(trait__key="churn_risk", profile_id=pk).value_number


# --- the Insights page ----------------------------------------------------------------------------------------------


def test_page_without_runs_says_so_and_offers_run_now(login_as):
    client = login_as("Marketing")
    response = client.get(PAGE)
    html = response.content.decode()
    assert response.status_code == 200 and csp_clean(html)
    assert html.count("Not run yet") == 3 and html.count("No run yet") == 3
    assert html.count(">Run now <span") == 3 and ">Run all <span" in html
    assert html.count("No profile has a value yet.") == 4  # the four distribution charts
    assert '<a href="/profiles/insights/" aria-current="page">Insights</a>' in html  # in the navigation
    assert 'aria-current="page">Profiles' not in html


def test_page_shows_a_trained_model_beside_its_baseline_with_history_and_charts(login_as):
    population()
    run = insight_run(kind="churn")
    assert run.status == "ok"
    html = login_as("Service").get(PAGE).content.decode()
    assert "Trained model" in html and "logistic_regression" in html
    metrics = run.metrics
    assert f'<td class="num">{metrics["auc"]:.3f}</td><td class="num">{metrics["baseline_auc"]:.3f}</td>' in html
    assert "Baseline: recency alone (days since the last order)." in html
    assert f'data-run="{run.pk}"' in html  # the history
    assert f"{run.scored_rows:,} profiles scored" in html
    assert 'id="insight-churn_risk_level"' in html and '"labels": ["low", "medium", "high"]' in html
    assert ">Run now <span" not in html and ">Run all <span" not in html  # Service may not run models


def test_page_labels_a_heuristic_with_its_reason(login_as):
    population(people=40)
    run = insight_run(kind="churn")
    assert run.status == "heuristic"
    html = login_as("Marketing").get(PAGE).content.decode()
    assert "A heuristic stands in, not a trained model." in html and escape(run.reason) in html
    assert "Heuristic (too little data)" in html


def test_page_shows_a_failed_run_with_its_reason_and_the_run_that_still_scores(login_as, settings):
    population(people=40)
    good = insight_run(kind="churn")
    settings.INSIGHTS_CHURN_HORIZON_DAYS = "ninety"
    with pytest.raises(ValueError):
        insight_run(kind="churn")
    failed = InsightModel.objects.get(kind="churn", status="failed")
    html = login_as("Marketing").get(PAGE).content.decode()
    assert "The latest run failed" in html and escape(failed.reason) in html
    assert f"The run of {timezone.localtime(good.finished_at):%Y-%m-%d %H:%M} still scores." in html
    assert f'data-run="{failed.pk}"' in html and f'data-run="{good.pk}"' in html


def test_run_now_queues_the_run_and_the_page_shows_it(login_as, django_capture_on_commit_callbacks):
    population(people=40)
    client = login_as("Marketing")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = htmx(client, "post", reverse("profiles:insights-run", args=["churn"]))
    html = response.content.decode()
    assert response.status_code == 200 and 'id="insight-runs"' in html and "<html" not in html
    assert "Queued" in html and "queued=churn" in html and "every 3s" in html  # polls until the run starts
    assert "toast" in response.headers["HX-Trigger"]
    assert len(callbacks) == 1 and not InsightModel.objects.exists()  # nothing runs before the commit
    callbacks[0]()  # the commit: the task runs (eagerly here)
    run = InsightModel.objects.get(kind="churn")
    assert run.status == "heuristic" and run.scored_rows > 0
    since = response.content.decode().split("since=")[1].split('"')[0]
    polled = htmx(client, "get", f"{PAGE}?part=runs&queued=churn&since={since}").content.decode()
    assert "Queued" not in polled and f'data-run="{run.pk}"' in polled and "every 3s" not in polled


def test_a_running_run_is_polled_until_it_is_done_and_a_stale_one_is_not(login_as):
    # The running state is committed by insight_run_record while the run works; here it is written directly.
    run = InsightModel.objects.create(kind="clv", status="running")
    client = login_as("Marketing")
    html = htmx(client, "get", f"{PAGE}?part=runs").content.decode()
    assert 'Running</span> since' in html and "every 3s" in html
    assert '<button type="submit" class="btn btn-sm" disabled>Run now' in html  # for that kind only
    InsightModel.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=3))
    html = htmx(client, "get", f"{PAGE}?part=runs").content.decode()
    assert "the worker may have stopped" in html and "every 3s" not in html


@pytest.mark.django_db(transaction=True)  # requests commit as they do outside tests: the queued run starts at once
def test_run_all_and_the_plain_form_post(login_as):
    population(people=40)
    client = login_as("Admin")
    response = client.post(reverse("profiles:insights-run-all"))
    assert response.status_code == 302 and response["Location"] == PAGE
    assert set(InsightModel.objects.values_list("kind", flat=True)) == {"churn", "clv", "recommendations"}
    done = htmx(client, "post", reverse("profiles:insights-run", args=["clv"])).content.decode()
    run = InsightModel.objects.filter(kind="clv").first()
    assert "Queued" not in done and f'data-run="{run.pk}"' in done  # in-process the run is over before the answer
    assert htmx(client, "post", reverse("profiles:insights-run", args=["astrology"])).status_code == 400


@pytest.mark.parametrize("role", ["Service", "Sales", "Privacy"])
def test_run_now_needs_the_permission(login_as, role, django_capture_on_commit_callbacks):
    client = login_as(role)
    assert client.get(PAGE).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("profiles:insights-run", args=["churn"])).status_code == 403
        assert client.post(reverse("profiles:insights-run-all")).status_code == 403
    assert not InsightModel.objects.exists()


def test_page_needs_the_view_permission(client, make_user):
    client.force_login(make_user(None))
    assert client.get(PAGE).status_code == 403
    assert 'href="/profiles/insights/"' not in client.get("/").content.decode()


# --- the 360° panel -------------------------------------------------------------------------------------------------


def test_panel_explains_a_customers_churn_risk_and_value(login_as):
    kinds = population()
    insight_run(kind="churn")
    insight_run(kind="clv")
    [pk] = by_email(kinds["lapsed"][:1])
    html = login_as("Marketing").get(reverse("profiles:detail", args=[pk])).content.decode()
    assert 'id="panel-insights-title">Insights' in html
    percent = round(risk_of(pk) * 100)
    level = ComputedValue.objects.get(trait__key="churn_risk_level", profile_id=pk).value_text
    assert f"<strong data-churn-risk>{percent}%</strong>" in html and f"{level.capitalize()} risk" in html
    assert "Raises</span>" in html or "Lowers</span>" in html
    auc = InsightModel.objects.get(kind="churn").metrics["auc"]
    assert f"AUC {auc:.3f} on the held-out period" in html and "Scored by a trained model" in html
    assert "Probability still active" in html and "Expected order value" in html
    assert "How the models are trained and how well they do" in html


def test_panel_empty_states_say_why(login_as, client, make_user):
    kinds = population(people=40)
    [browser] = by_email(kinds["browser"][:1]) or [Profile.objects.exclude(
        pk__in=by_email(kinds["loyal"] + kinds["lapsed"])).values_list("pk", flat=True).first()]
    [customer] = by_email((kinds["loyal"] + kinds["lapsed"])[:1])
    html = login_as("Marketing").get(reverse("profiles:detail", args=[customer])).content.decode()
    assert "No insight run yet — <a href=\"/profiles/insights/\">run the models on the Insights page</a>" in html
    service = make_user("Service")
    client.force_login(service)
    html = client.get(reverse("profiles:detail", args=[customer])).content.decode()
    assert "No insight run yet: the models run every night" in html  # no link for who may not run them
    insight_run(kind="churn")
    html = client.get(reverse("profiles:detail", args=[browser])).content.decode()
    assert "Not a customer yet: churn and value are predicted for customers with an order." in html


def test_panel_and_api_field_need_the_computed_values_permission(client, api_client, make_user):
    population(people=40)
    insight_run(kind="churn")
    pk = next(iter(ComputedValue.objects.filter(trait__key="churn_risk").values_list("profile_id", flat=True)))
    user = get_user_model().objects.create_user(username="viewer", password="pw-for-tests-only")
    user.user_permissions.add(Permission.objects.get(codename="view_profile", content_type__app_label="profiles"))
    client.force_login(user)
    html = client.get(reverse("profiles:detail", args=[pk])).content.decode()
    assert 'id="panel-insights-title"' not in html
    api_client.force_authenticate(user)
    assert api_client.get(f"/api/v1/profiles/{pk}/").json()["insights"] is None
    assert api_client.get(f"/api/v1/profiles/{pk}/insights/").status_code == 403


# --- the API --------------------------------------------------------------------------------------------------------


def test_api_lists_reads_and_filters_runs(api_as):
    population(people=40)
    churn, clv = insight_run(kind="churn"), insight_run(kind="clv")
    client = api_as("Service")
    body = client.get("/api/v1/insights/runs/").json()
    assert [r["id"] for r in body["results"]] == [clv.pk, churn.pk] and body["count"] == 2
    assert [r["id"] for r in client.get("/api/v1/insights/runs/?kind=churn").json()["results"]] == [churn.pk]
    one = client.get(f"/api/v1/insights/runs/{churn.pk}/").json()
    assert one["status"] == "heuristic" and one["reason"] == churn.reason and one["metrics"] == churn.metrics
    assert set(one) >= {"kind", "method", "cutoff_at", "training_rows", "scored_rows", "params", "train_seconds",
                        "score_seconds", "started_at", "finished_at"}
    assert client.get("/api/v1/insights/runs/99999/").status_code == 404


def test_api_run_waiting_for_a_worker_has_no_run_yet(api_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_as("Admin").post("/api/v1/insights/runs/", {"kind": "clv"}, format="json")
    assert response.status_code == 202 and response.json() == {"kind": "clv", "queued": True, "run": None}
    assert len(callbacks) == 1


@pytest.mark.django_db(transaction=True)  # requests commit as they do outside tests: the queued run starts at once
def test_api_runs_a_model_and_names_a_bad_kind(api_as):
    population(people=40)
    client = api_as("Marketing")
    response = client.post("/api/v1/insights/runs/", {"kind": "churn"}, format="json")
    assert response.status_code == 202
    body = response.json()
    run = InsightModel.objects.get(kind="churn")
    assert body["kind"] == "churn" and body["queued"] is True and body["run"]["id"] == run.pk
    assert body["run"]["status"] == "heuristic"
    bad = client.post("/api/v1/insights/runs/", {"kind": "astrology"}, format="json")
    assert bad.status_code == 400 and "kind" in str(bad.json())
    assert client.post("/api/v1/insights/runs/", {}, format="json").status_code == 400


def test_api_run_needs_the_permission(api_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert api_as("Service").post("/api/v1/insights/runs/", {"kind": "churn"}, format="json").status_code == 403
    assert api_as(None).get("/api/v1/insights/runs/").status_code == 403
    assert not InsightModel.objects.exists()


def test_api_profile_insights_and_the_profile_field(api_as):
    kinds = population()
    insight_run(kind="churn")
    [pk] = by_email(kinds["lapsed"][:1])
    client = api_as("Marketing")
    body = client.get(f"/api/v1/profiles/{pk}/insights/").json()
    assert body["profile"] == pk and body["churn"]["risk"] == risk_of(pk)
    assert body["churn"]["factors"] and {"feature", "value", "effect", "text", "direction"} <= set(
        body["churn"]["factors"][0])
    assert body["churn"]["run"]["metrics"]["auc"] is not None and body["clv"] is None
    assert client.get(f"/api/v1/profiles/{pk}/").json()["insights"]["churn"]["risk"] == risk_of(pk)
    assert client.get("/api/v1/profiles/99999999/insights/").status_code == 404


# --- the dashboard --------------------------------------------------------------------------------------------------


def test_dashboard_shows_the_distributions(login_as):
    client = login_as("Marketing")
    html = client.get("/").content.decode()
    assert 'data-distribution="churn_risk_level"' in html and "No churn scores yet" in html
    population(people=40)
    insight_run(kind="churn")
    insight_run(kind="clv")
    html = client.get("/").content.decode()
    customers = ComputedValue.objects.filter(trait__key="churn_risk").count()
    assert 'id="distribution-churn_risk_level-data"' in html and 'id="distribution-predicted_clv_12m-data"' in html
    assert f"Customers per churn risk level · {customers:,} profiles" in html and csp_clean(html)
    assert 'data-distribution="churn_risk_level"' not in htmx(client, "get", "/dashboard/counts/").content.decode()


# --- quality, read generically --------------------------------------------------------------------------------------


def test_quality_pairs_each_measure_with_its_baseline_even_for_unknown_metrics():
    quality = run_quality({"auc": 0.8, "baseline_auc": 0.7, "hit_rate_at_10": 0.2, "baseline_hit_rate_at_10": 0.3,
                           "revenue": {"mae": 5.0, "total_error_percent": -2.0},
                           "baseline_revenue": {"mae": 7.5, "total_error_percent": 1.0},
                           "baseline": "popularity", "reason": "", "people": 1200, "odd_measure": 0.1234})
    rows = {row["label"]: row for row in quality["compared"]}
    assert rows["AUC"] == {"label": "AUC", "model": "0.800", "baseline": "0.700", "better": True}
    assert rows["Hit rate @10"]["better"] is False
    assert rows["Revenue: MAE"]["better"] is True and rows["Revenue: Error of the total (%)"]["better"] is False
    assert quality["baseline"] == "popularity"
    assert {"label": "People with product events", "value": "1,200"} in quality["details"]
    assert {"label": "Odd measure", "value": "0.123"} in quality["details"]
