"""The Celery app: one queue enum, routes by module, acks_late, retries on transient errors only, one beat schedule,
and a round trip through a real worker process and broker."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.db import OperationalError

from cdp.celery import BEAT_SCHEDULE, ROUTES_BY_MODULE, TRANSIENT_ERRORS, Queues, app
from tests.core import celery_probe
from tests.core.helpers import ROOT

APP_QUEUES = {
    "ingestion": Queues.INGESTION,
    "profiles": Queues.IDENTITY,
    "segments": Queues.SEGMENTS,
    "activation": Queues.ACTIVATION,
    "consent": Queues.DEFAULT,
}


def route(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_the_queues_are_one_enum_and_all_declared():
    assert [q.value for q in Queues] == ["ingestion", "identity", "segments", "activation", "default"]
    assert {q.name for q in app.conf.task_queues} == {q.value for q in Queues}
    assert app.conf.task_default_queue == Queues.DEFAULT
    assert {r["queue"] for r in ROUTES_BY_MODULE.values()} <= {q.value for q in Queues}


@pytest.mark.parametrize(("app_label", "queue"), APP_QUEUES.items())
def test_tasks_are_routed_by_the_module_they_live_in(app_label, queue):
    assert route(f"{app_label}.tasks.anything") == queue
    assert route(f"{app_label}.tasks.inbox_process") == queue


def test_tasks_outside_the_apps_go_to_the_default_queue():
    assert route("cdp.ping") == Queues.DEFAULT
    assert route("somewhere.else") == Queues.DEFAULT


def test_every_task_of_an_app_is_named_after_its_module_so_that_its_route_applies():
    app.loader.import_default_modules()
    for name, task in app.tasks.items():
        module = getattr(task, "__module__", "") or ""
        app_label = module.split(".")[0]
        if app_label in APP_QUEUES and module.endswith(".tasks"):
            assert name.startswith(f"{module}."), f"{name} lives in {module} but is named otherwise"
            assert route(name) == APP_QUEUES[app_label], name


def test_the_beat_schedule_names_registered_tasks_only():
    app.loader.import_default_modules()
    assert app.conf.beat_schedule is BEAT_SCHEDULE
    for entry_name, entry in BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, f"beat entry {entry_name} names unknown task {entry['task']}"
        assert "schedule" in entry, entry_name


def test_tasks_acknowledge_late_and_requeue_when_a_worker_dies():
    ping = app.tasks["cdp.ping"]
    assert ping.acks_late is True
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert ping.autoretry_for == TRANSIENT_ERRORS
    assert ping.retry_backoff and ping.retry_jitter


def test_a_transient_error_is_retried_until_it_passes():
    key = uuid.uuid4().hex
    result = celery_probe.flaky.apply(kwargs={"key": key, "failures": 2})
    assert result.get() == {"attempts": 3, "retries": 2}


def test_a_transient_error_that_persists_fails_after_the_last_retry():
    key = uuid.uuid4().hex
    with pytest.raises(OperationalError):
        celery_probe.flaky.apply(kwargs={"key": key, "failures": 100}).get()
    assert celery_probe.attempts[key] == 1 + celery_probe.flaky.max_retries


def test_a_programming_error_is_not_retried():
    key = uuid.uuid4().hex
    with pytest.raises(ValueError, match="a bug"):
        celery_probe.broken.apply(kwargs={"key": key}).get()
    assert celery_probe.attempts[key] == 1


def test_the_embedded_default_runs_tasks_eagerly_in_process():
    if settings.CELERY_BROKER_URL:
        pytest.skip("CELERY_BROKER_URL is set: tasks go to the broker, not eagerly")
    assert settings.CELERY_TASK_ALWAYS_EAGER is True
    assert app.tasks["cdp.ping"].delay("hello").get(timeout=1) == "hello"
    # A transient error is retried in-process too, instead of reaching the caller as celery's Retry.
    key = uuid.uuid4().hex
    assert celery_probe.flaky.delay(key, 1).get(timeout=1) == {"attempts": 2, "retries": 1}
    with pytest.raises(ValueError):
        celery_probe.broken.delay(uuid.uuid4().hex)


# --- a real worker ---------------------------------------------------------------------------------------------

BROKER_URL = os.environ.get("CELERY_BROKER_URL")


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    """``celery -A cdp worker`` on every queue of the enum, as production runs it, in a subprocess."""
    if not BROKER_URL:
        pytest.skip("CELERY_BROKER_URL is not set: no broker to run a real Celery worker against "
                    "(set it, e.g. redis://127.0.0.1:6379/15, to run the round trip)")
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), CDP_VAR_DIR=str(log.parent))
    command = [
        sys.executable, "-m", "celery", "-A", "cdp", "worker",
        "-Q", ",".join(q.value for q in Queues),
        "-I", "tests.core.celery_probe",
        "-P", "solo", "-c", "1", "-l", "INFO", "-n", f"platform-test-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    yield process, log
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _get(result, worker, timeout=60):
    """The task's result; fails at once, with the worker's log, when the worker process has died."""
    process, log = worker
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"the worker exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            return result.get(timeout=1)
        except CeleryTimeoutError:
            if time.monotonic() > deadline:
                raise


@pytest.mark.broker
def test_a_real_worker_answers_a_ping_through_the_broker(worker):
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    token = uuid.uuid4().hex
    assert _get(app.tasks["cdp.ping"].delay(token), worker) == token


@pytest.mark.broker
@pytest.mark.parametrize("app_label", sorted(APP_QUEUES))
def test_a_task_reaches_the_worker_on_the_queue_of_its_module(worker, app_label):
    token = uuid.uuid4().hex
    result = app.send_task(f"{app_label}.tasks.platform_probe", args=[token])
    assert _get(result, worker) == {"value": token, "queue": APP_QUEUES[app_label].value}


@pytest.mark.broker
def test_a_real_worker_retries_a_transient_error_with_backoff(worker):
    result = app.send_task("profiles.tasks.platform_flaky", kwargs={"key": uuid.uuid4().hex, "failures": 1})
    assert _get(result, worker) == {"attempts": 2, "retries": 1}


@pytest.mark.broker
def test_a_real_worker_does_not_retry_a_programming_error(worker):
    result = app.send_task("profiles.tasks.platform_broken", kwargs={"key": uuid.uuid4().hex})
    with pytest.raises(ValueError, match="a bug"):
        _get(result, worker)
    assert result.state == "FAILURE"
