"""The layer contract of DESIGN.md holds (import-linter), and the apps keep the agreed inner shape."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.helpers import ROOT

APPS = ["profiles", "consent", "ingestion", "segments", "activation"]
SHAPE = ["services", "selectors", "filters", "forms", "views", "urls", "admin", "apps", "tasks", "models",
         "api/serializers", "api/views", "api/urls"]


def lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if not found:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]'")
    return found


def test_the_layer_contracts_are_kept():
    result = subprocess.run([lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("app", APPS)
def test_each_app_has_the_agreed_inner_shape(app):
    for part in SHAPE:
        module, package = ROOT / app / f"{part}.py", ROOT / app / part / "__init__.py"
        assert module.exists() or package.exists(), f"{app}/{part}.py (or a {part}/ package) is missing"
