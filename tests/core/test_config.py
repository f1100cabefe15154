"""Configuration from the environment: a missing or invalid production setting stops start-up with one line that
names the variable; a complete production configuration starts with secure cookies, HSTS, SSL redirect and CSP;
the embedded default generates its secret key into var/."""

import json
import stat

import pytest

from tests.core.helpers import PRODUCTION_SECRET, manage, production_env, project_env, python


def assert_stops_naming(result, variable: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert variable in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "overrides"),
    [
        ("SECRET_KEY", {"SECRET_KEY": None}),
        ("SECRET_KEY", {"SECRET_KEY": "too-short"}),
        ("SECRET_KEY", {"SECRET_KEY": "a" * 60}),
        ("DATABASE_URL", {"DATABASE_URL": None}),
        ("DATABASE_URL", {"DATABASE_URL": "mysql://root@127.0.0.1/cdp"}),
        ("DATABASE_URL", {"DATABASE_URL": "postgres://postgres@127.0.0.1:notaport/cdp"}),
        ("ALLOWED_HOSTS", {"ALLOWED_HOSTS": None}),
        ("ALLOWED_HOSTS", {"ALLOWED_HOSTS": " , "}),
        ("ALLOWED_HOSTS", {"ALLOWED_HOSTS": "https://cdp.example.com"}),
        ("CELERY_BROKER_URL", {"CELERY_BROKER_URL": None}),
        ("CELERY_BROKER_URL", {"CELERY_BROKER_URL": "127.0.0.1:6379"}),
        ("PORT", {"PORT": "eighty"}),
        ("PORT", {"PORT": "70000"}),
        ("DEBUG", {"DEBUG": "maybe"}),
        ("SECURE_HSTS_SECONDS", {"SECURE_HSTS_SECONDS": "-1"}),
        ("LOG_LEVEL", {"LOG_LEVEL": "loud"}),
        ("CDP_ENV", {"CDP_ENV": "staging"}),
    ],
)
def test_a_missing_or_invalid_production_setting_stops_start_up_with_one_line_naming_it(tmp_path, variable,
                                                                                         overrides):
    result = manage("check", env=production_env(tmp_path, **overrides))
    assert_stops_naming(result, variable)


def test_invalid_port_stops_the_embedded_default_too(tmp_path):
    assert_stops_naming(manage("check", env=project_env(tmp_path, PORT="0")), "PORT")


def test_a_complete_production_configuration_passes_the_deploy_checks(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout
    # Production never writes a secret key of its own.
    assert not (tmp_path / "secret_key").exists()


PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client

client = Client(HTTP_HOST="cdp.example.com")
plain = client.get("/admin/login/")
secure = client.get("/admin/login/", secure=True)
health = client.get("/healthz")
csrf = secure.cookies.get(settings.CSRF_COOKIE_NAME)
print(json.dumps({
    "debug": settings.DEBUG,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location", ""),
    "secure_status": secure.status_code,
    "hsts": secure.get("Strict-Transport-Security", ""),
    "csp": secure.get("Content-Security-Policy", ""),
    "csrf_cookie_flag": bool(csrf and csrf["secure"]),
    "health_status": health.status_code,
    "nosniff": secure.get("X-Content-Type-Options", ""),
    "frame": secure.get("X-Frame-Options", ""),
}))
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """A production var/ after ``manage.py collectstatic`` (production serves hashed, compressed files)."""
    var_dir = tmp_path_factory.mktemp("production-var")
    result = manage("collectstatic", "--noinput", env=production_env(var_dir))
    assert result.returncode == 0, result.stderr
    assert (var_dir / "static" / "staticfiles.json").exists()
    return var_dir


def test_production_sends_secure_cookies_hsts_ssl_redirect_and_csp(collected):
    result = python(PROBE, env=production_env(collected))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["debug"] is False
    assert seen["session_cookie_secure"] is True
    assert seen["csrf_cookie_secure"] is True
    assert seen["plain_status"] == 301
    assert seen["plain_location"] == "https://cdp.example.com/admin/login/"
    assert seen["secure_status"] == 200
    assert seen["hsts"] == "max-age=31536000; includeSubDomains"
    assert "script-src 'self'" in seen["csp"]
    assert "style-src 'self'" in seen["csp"]
    assert "default-src 'self'" in seen["csp"]
    assert seen["csrf_cookie_flag"] is True
    # Health checks answer on plain HTTP, for load balancers inside the network.
    assert seen["health_status"] == 200
    assert seen["nosniff"] == "nosniff"
    assert seen["frame"] == "DENY"


def test_the_embedded_default_serves_plain_http_without_hsts(tmp_path):
    result = python(PROBE.replace('"cdp.example.com"', '"127.0.0.1"'), env=project_env(tmp_path))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain_status"] == 200
    assert seen["hsts"] == ""
    assert seen["session_cookie_secure"] is False
    # The same strict CSP as production, so that development shows what production would block.
    assert "script-src 'self'" in seen["csp"]


KEY_PROBE = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def test_the_embedded_default_generates_its_secret_key_into_var_once(tmp_path):
    env = project_env(tmp_path)
    first = python(KEY_PROBE, env=env)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    key = key_file.read_text().strip()
    assert len(key) >= 50
    assert first.stdout.strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The next start reuses it (sessions survive a restart).
    second = python(KEY_PROBE, env=env)
    assert second.stdout.strip() == key
    # Another var/ gets another key.
    other = python(KEY_PROBE, env=project_env(tmp_path / "other"))
    assert other.stdout.strip() not in {"", key}


def test_a_secret_key_from_the_environment_wins_over_the_generated_one(tmp_path):
    result = python(KEY_PROBE, env=project_env(tmp_path, SECRET_KEY=PRODUCTION_SECRET))
    assert result.stdout.strip() == PRODUCTION_SECRET
    assert not (tmp_path / "secret_key").exists()


def test_the_embedded_default_uses_sqlite_under_var_and_eager_tasks(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings; import json; "
            "print(json.dumps([settings.DATABASES['default']['ENGINE'], str(settings.DATABASES['default']['NAME']),"
            " settings.CELERY_TASK_ALWAYS_EAGER, settings.CELERY_BROKER_URL]))")
    result = python(code, env=project_env(tmp_path))
    engine, name, eager, broker = json.loads(result.stdout)
    assert engine == "django.db.backends.sqlite3"
    assert name == str(tmp_path / "cdp.sqlite3")
    assert eager is True
    assert broker is None
    with_broker = python(code, env=project_env(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/15",
                                               DATABASE_URL="postgres://postgres@127.0.0.1:5432/cdp_x"))
    engine, name, eager, broker = json.loads(with_broker.stdout)
    assert engine == "django.db.backends.postgresql"
    assert name == "cdp_x"
    assert eager is False
    assert broker == "redis://127.0.0.1:6379/15"
