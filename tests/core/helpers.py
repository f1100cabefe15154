"""Running the project in a subprocess with an environment the test controls."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

# Every variable cdp/config.py reads: a subprocess starts without any of them unless the test sets it.
CONFIG_VARIABLES = [
    "CDP_ENV", "CDP_VAR_DIR", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
    "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL", "DEBUG", "HOST", "PORT", "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_PRELOAD", "LOG_LEVEL", "DEFAULT_FROM_EMAIL", "CDP_ENCRYPTION_KEYS",
    "CDP_SUPPRESSION_KEY", "CDP_CHURN_HORIZON_DAYS",
]

PRODUCTION_SECRET = "k8Qv2rX7mN4pL9sT1wY6zB3cF5hJ0dG8aE2uI7oP4qR9tV1x-test-only-5m"  # 60 characters
PRODUCTION_ENCRYPTION_KEY = "dGVzdC1vbmx5LWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU="  # Fernet: 32 bytes, base64


def project_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """The current environment without any CDP setting, with var/ in ``var_dir`` and ``overrides`` on top."""
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    env["DJANGO_SETTINGS_MODULE"] = "cdp.settings"
    env["CDP_VAR_DIR"] = str(var_dir)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(overrides)
    return env


def production_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """A complete production configuration (SQLite file in var_dir, a broker URL that need not answer)."""
    settings = {
        "CDP_ENV": "production",
        "SECRET_KEY": PRODUCTION_SECRET,
        "DATABASE_URL": f"sqlite:///{var_dir / 'prod.sqlite3'}",
        "ALLOWED_HOSTS": "cdp.example.com",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "CDP_ENCRYPTION_KEYS": PRODUCTION_ENCRYPTION_KEY,
    }
    settings.update(overrides)
    return project_env(var_dir, **{k: v for k, v in settings.items() if v is not None})


def run(args: list[str], env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return run([PYTHON, "manage.py", *args], env=env, timeout=timeout)


def python(code: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return run([PYTHON, "-c", code], env=env, timeout=timeout)
