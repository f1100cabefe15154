import hashlib
import secrets

from django.db import transaction
from django.utils.text import slugify

from ingestion.models import Source

WRITE_KEY_BYTES = 24


def write_key_hash(write_key: str) -> str:
    """Write keys are long random tokens, so a plain SHA-256 is enough (no salt or stretching needed)."""
    return hashlib.sha256(write_key.encode()).hexdigest()


@transaction.atomic
def source_create(*, name: str, kind: str, slug: str = "", channel: str = "", settings: dict | None = None
                  ) -> tuple[Source, str]:
    """Create a source. Returns it with its write key, which is shown this once and stored only hashed."""
    if kind not in Source.Kind.values:
        raise ValueError(f"Unknown source kind {kind!r}; one of {', '.join(Source.Kind.values)}")
    slug = slug or slugify(name)[:64]
    if not slug:
        raise ValueError("A source needs a name with at least one letter or digit.")
    if Source.objects.filter(slug=slug).exists():
        raise ValueError(f"A source with the slug {slug!r} exists already.")
    write_key = secrets.token_urlsafe(WRITE_KEY_BYTES)
    source = Source.objects.create(name=name, slug=slug, kind=kind, channel=channel, settings=settings or {},
                                   write_key_hash=write_key_hash(write_key), write_key_prefix=write_key[:8])
    return source, write_key
