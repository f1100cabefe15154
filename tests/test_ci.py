""".ci/run is the CI entry point: a strict bash script that runs both suites and the linters."""

import os
import subprocess

from tests.core.helpers import ROOT

SCRIPT = ROOT / ".ci" / "run"


def test_the_ci_script_is_strict_executable_bash():
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(SCRIPT, os.X_OK)
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_ci_script_runs_both_suites_then_the_linters():
    """Both suites run side by side (one per core), each with its own var/ and database, then the linters."""
    text = SCRIPT.read_text()
    assert 'make test >"$LOGS/$name.log"' in text
    postgres = text.index('run_suite postgres DATABASE_URL="$PG_URL" CELERY_BROKER_URL="$BROKER_URL"')
    embedded = text.index("run_suite embedded -u DATABASE_URL -u CELERY_BROKER_URL")
    ruff = text.index(".venv/bin/ruff check .")
    contracts = text.index(".venv/bin/lint-imports")
    assert postgres < embedded < ruff < contracts
    assert 'PG_URL="postgres://postgres@127.0.0.1:5432/cdp_ci"' in text
    assert 'BROKER_URL="redis://127.0.0.1:6379/15"' in text
    # Services are started only when they do not answer.
    assert "pg_isready" in text and "redis-cli" in text
    assert "pg_ctlcluster --skip-systemctl-redirect" in text
    assert 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no' in text
