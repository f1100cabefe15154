"""Reading settings from the environment.

Every setting comes from the environment. A missing or invalid setting stops start-up with one line that names
the variable (``ConfigError`` is turned into that line by ``manage.py``, ``cdp.wsgi`` and ``cdp.celery``).
"""

import os
import secrets
from pathlib import Path


class ConfigError(Exception):
    """A setting is missing or invalid. The message names the variable."""


TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ConfigError(f"{name} is required in production but is not set")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ConfigError(f"{name} must be one of 1/0, true/false, yes/no, on/off, not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {value!r}") from None
    if minimum is not None and maximum is not None and not minimum <= number <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, not {number}")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, not {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def embedded_secret_key(var_dir: Path) -> str:
    """The secret key of the embedded default: generated once into var/, kept out of git."""
    path = var_dir / "secret_key"
    if path.exists():
        return _read_key(path)
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process (a test worker, the Celery worker) wrote it first: use that one.
        return _read_key(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def embedded_encryption_keys(var_dir: Path) -> list[str]:
    """The encryption key of the embedded default: a Fernet key generated once into var/ (like the secret key)."""
    path = var_dir / "encryption_key"
    if not path.exists():
        from cryptography.fernet import Fernet

        var_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return [_read_key(path, "CDP_ENCRYPTION_KEYS")]
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode())
    return [_read_key(path, "CDP_ENCRYPTION_KEYS")]


def _encryption_keys(value: str | None) -> list[str]:
    """CDP_ENCRYPTION_KEYS: Fernet keys separated by commas, the newest first (it encrypts; the others only decrypt,
    until ``manage.py rotate_encryption_key`` has re-encrypted everything with the first)."""
    if not value:
        return []
    from cryptography.fernet import Fernet

    keys = [key.strip() for key in value.split(",") if key.strip()]
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(f"CDP_ENCRYPTION_KEYS: key {number} is not a Fernet key (32 url-safe base64-encoded "
                              f"bytes; make one with: python -c 'from cryptography.fernet import Fernet; "
                              f"print(Fernet.generate_key().decode())')") from None
    return keys


def _networks(value: list[str]) -> list[str]:
    """CDP_DESTINATION_ALLOWED_NETWORKS: CIDRs (``10.0.0.0/8``, ``fd00::/8``; a bare address is one host)."""
    import ipaddress

    networks = []
    for item in value:
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"CDP_DESTINATION_ALLOWED_NETWORKS takes networks such as 10.0.0.0/8 separated by "
                              f"commas, not {item!r}") from None
    return networks


def _read_key(path: Path, variable: str = "SECRET_KEY") -> str:
    """The key another process is writing; it is a few bytes, so a short wait is enough."""
    import time

    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise ConfigError(f"{variable}: {path} is empty; delete it to generate a new key")


def fail(error: ConfigError) -> None:
    """Stop start-up with one line that names the variable."""
    import sys

    sys.stderr.write(f"cdp: configuration error: {error}\n")
    raise SystemExit(2)


def _database(url: str) -> dict:
    import dj_database_url

    if not url.startswith(("sqlite:", "postgres:", "postgresql:", "pgsql:")):
        raise ConfigError(f"DATABASE_URL must be a sqlite:// or postgres:// URL, not {url.split(':', 1)[0]!r}")
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as error:
        raise ConfigError(f"DATABASE_URL is invalid: {error}") from None
    if config["ENGINE"].endswith("sqlite3"):
        config["CONN_MAX_AGE"] = 0
        # WAL lets the embedded server read while a task writes.
        config["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                             "transaction_mode": "IMMEDIATE", "timeout": 20}
    return config


BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp", "sentinel")
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _broker(url: str | None) -> str | None:
    if url is None:
        return None
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in BROKER_SCHEMES:
        raise ConfigError(f"CELERY_BROKER_URL must be a redis:// or amqp:// URL, not {scheme or url[:20]!r}")
    return url


def _hosts(hosts: list[str]) -> list[str]:
    for host in hosts:
        if "://" in host or "/" in host or " " in host:
            raise ConfigError(f"ALLOWED_HOSTS takes host names separated by commas, not {host!r}")
    return hosts


def read_environment(base_dir: Path) -> dict:
    """Everything the settings take from the environment, checked. Raises ConfigError naming the variable."""
    var_dir = Path(env_str("CDP_VAR_DIR", str(base_dir / "var")))
    production = (env_str("CDP_ENV", "development") or "").lower()
    if production not in {"development", "production", "test"}:
        raise ConfigError(f"CDP_ENV must be development, test or production, not {production!r}")
    production = production == "production"

    if production:
        secret_key = env_str("SECRET_KEY", required=True)
        # Django's own deploy check (security.W009) asks for this much.
        if len(secret_key) < 50 or len(set(secret_key)) < 5 or secret_key.startswith("django-insecure-"):
            raise ConfigError("SECRET_KEY must be a random value of at least 50 characters in production")
        database = _database(env_str("DATABASE_URL", required=True))
        allowed_hosts = _hosts(env_list("ALLOWED_HOSTS", []))
        if not allowed_hosts:
            raise ConfigError("ALLOWED_HOSTS is required in production but is not set")
        broker_url = _broker(env_str("CELERY_BROKER_URL", required=True))
        encryption_keys = _encryption_keys(env_str("CDP_ENCRYPTION_KEYS", required=True))
    else:
        secret_key = env_str("SECRET_KEY") or embedded_secret_key(var_dir)
        database = _database(env_str("DATABASE_URL", f"sqlite:///{var_dir / 'cdp.sqlite3'}"))
        allowed_hosts = _hosts(env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"]))
        broker_url = _broker(env_str("CELERY_BROKER_URL"))
        encryption_keys = _encryption_keys(env_str("CDP_ENCRYPTION_KEYS")) or embedded_encryption_keys(var_dir)
    log_level = (env_str("LOG_LEVEL", "INFO") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(sorted(LOG_LEVELS))}, not {log_level!r}")

    return {
        "production": production,
        "var_dir": var_dir,
        "debug": env_bool("DEBUG", not production),
        "secret_key": secret_key,
        "database": database,
        "allowed_hosts": allowed_hosts,
        "csrf_trusted_origins": env_list("CSRF_TRUSTED_ORIGINS", []),
        "broker_url": broker_url,
        "result_backend": env_str("CELERY_RESULT_BACKEND", broker_url),
        "redis_url": env_str("REDIS_URL", broker_url if broker_url and broker_url.startswith("redis") else None),
        "host": env_str("HOST", "127.0.0.1"),
        "port": env_int("PORT", 8000, minimum=1, maximum=65535),
        "secure_ssl_redirect": env_bool("SECURE_SSL_REDIRECT", production),
        "hsts_seconds": env_int("SECURE_HSTS_SECONDS", 31_536_000 if production else 0, minimum=0),
        "hsts_preload": env_bool("SECURE_HSTS_PRELOAD", False),
        "log_level": log_level,
        "default_from_email": env_str("DEFAULT_FROM_EMAIL", "cdp@localhost"),
        "suppression_key": env_str("CDP_SUPPRESSION_KEY", ""),
        "encryption_keys": encryption_keys,
        "destination_allowed_networks": _networks(env_list("CDP_DESTINATION_ALLOWED_NETWORKS", [])),
        "churn_horizon_days": env_int("CDP_CHURN_HORIZON_DAYS", 90, minimum=7, maximum=730),
    }
