"""The README and the operations guide stay true to the code: the quick start has exactly two commands, the
production section starts a worker for every queue, and every environment variable the code reads is
documented."""

import re

from cdp.celery import Queues
from tests.core.helpers import ROOT

README = (ROOT / "README.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
CONFIG = (ROOT / "cdp" / "config.py").read_text()


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh)?\n(.*?)```", text, flags=re.S)


def test_the_quick_start_has_exactly_two_set_up_commands():
    first_block = code_blocks(section(README, "Quick start"))[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    assert "python3-venv" in section(README, "Quick start")


def test_the_production_section_runs_a_worker_per_queue_and_one_beat():
    production = section(README, "Production")
    for queue in Queues:
        assert f"celery -A cdp worker -Q {queue.value} " in production, queue
    assert production.count("celery -A cdp beat") == 1
    # Threads: the tracking API's concurrent single-event calls of one process share an INSERT and a commit.
    web = next(line.strip() for line in production.splitlines() if "gunicorn cdp.wsgi" in line)
    assert web == ".venv/bin/gunicorn cdp.wsgi -k gthread -w 2 --threads 16 -b 0.0.0.0:8000"
    assert f"`{web}`" in OPERATIONS
    for command in ("migrate", "collectstatic --noinput", "sync_roles"):
        assert f"manage.py {command}" in production
    for variable in ("CDP_ENV=production", "SECRET_KEY=", "DATABASE_URL=", "ALLOWED_HOSTS=", "CELERY_BROKER_URL=",
                     "CDP_ENCRYPTION_KEYS="):
        assert f"export {variable}" in production


def test_every_environment_variable_the_code_reads_is_documented():
    read = set(re.findall(r"env_(?:str|bool|int|list)\(\s*\"([A-Z_]+)\"", CONFIG))
    assert {"SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "CELERY_BROKER_URL", "PORT", "DEBUG"} <= read
    table = section(OPERATIONS, "Environment variables")
    missing = sorted(name for name in read if f"`{name}`" not in table)
    assert not missing, f"docs/operations.md does not document {missing}"
