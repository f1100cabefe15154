import hashlib
import secrets

from django.db import transaction
from django.utils.text import slugify

from cdp.core.services import audit_record
from ingestion.models import Source
from ingestion.selectors import source_key_cache_clear

WRITE_KEY_BYTES = 24
# Slugs that are pages of the sources UI (/sources/new/, /sources/plans/), so no source can take them.
RESERVED_SLUGS = {"new", "plans", "imports", "api"}


def write_key_hash(write_key: str) -> str:
    """Write keys are long random tokens, so a plain SHA-256 is enough (no salt or stretching needed)."""
    return hashlib.sha256(write_key.encode()).hexdigest()


@transaction.atomic
def source_create(*, name: str, kind: str, slug: str = "", channel: str = "", settings: dict | None = None,
                  actor=None, request=None) -> tuple[Source, str]:
    """Create a source. Returns it with its write key, which is shown this once and stored only hashed."""
    if kind not in Source.Kind.values:
        raise ValueError(f"Unknown source kind {kind!r}; one of {', '.join(Source.Kind.values)}")
    slug = slug or slugify(name)[:64]
    if not slug:
        raise ValueError("A source needs a name with at least one letter or digit.")
    if slug in RESERVED_SLUGS:
        raise ValueError(f"The slug {slug!r} is reserved; choose another.")
    if Source.objects.filter(slug=slug).exists():
        raise ValueError(f"A source with the slug {slug!r} exists already.")
    write_key = secrets.token_urlsafe(WRITE_KEY_BYTES)
    source = Source.objects.create(name=name, slug=slug, kind=kind, channel=channel, settings=settings or {},
                                   write_key_hash=write_key_hash(write_key), write_key_prefix=write_key[:8])
    if actor is not None:
        audit_record(actor=actor, action="create", object_type="ingestion.source", object_id=source.pk,
                     summary=f"Created source {source.slug}", request=request)
    return source, write_key


def _keys_forget() -> None:
    """This process forgets cached write keys now and again after the commit (other processes within seconds)."""
    source_key_cache_clear()
    transaction.on_commit(source_key_cache_clear)


@transaction.atomic
def source_enabled_set(*, source: Source, enabled: bool, actor=None, request=None) -> Source:
    """Switch a source on or off. A switched-off source's write key answers 403 (within a few seconds in every
    web process, which cache keys briefly); messages already in the inbox are still processed."""
    if source.enabled != enabled:
        source.enabled = enabled
        source.save(update_fields=["enabled"])
        _keys_forget()
        audit_record(actor=actor, action="change", object_type="ingestion.source", object_id=source.pk,
                     summary=f"Switched source {source.slug} {'on' if enabled else 'off'}", fields=["enabled"],
                     request=request)
    return source


@transaction.atomic
def source_update(*, source: Source, actor=None, request=None, **changes) -> Source:
    """Change a source's name, channel, settings or switch. Its kind and slug stay: record identities
    (``record:<slug>:<id>``) and imports refer to them."""
    allowed = {"name", "channel", "settings", "enabled"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    if "settings" in changes:  # a database URL sent back masked (****) keeps its password (helper "connectors")
        from ingestion.services.connectors import source_settings_incoming

        changes["settings"] = source_settings_incoming(source, changes["settings"])
    changed = [name for name, value in changes.items() if getattr(source, name) != value]
    for name in changed:
        setattr(source, name, changes[name])
    if changed:
        source.save(update_fields=changed)
        _keys_forget()
        audit_record(actor=actor, action="change", object_type="ingestion.source", object_id=source.pk,
                     summary=f"Changed source {source.slug}", fields=changed, request=request)
    return source


@transaction.atomic
def source_key_rotate(*, source: Source, actor=None, request=None) -> str:
    """A new write key for the source (shown this once); the old one stops working."""
    write_key = secrets.token_urlsafe(WRITE_KEY_BYTES)
    source.write_key_hash = write_key_hash(write_key)
    source.write_key_prefix = write_key[:8]
    source.save(update_fields=["write_key_hash", "write_key_prefix"])
    _keys_forget()
    audit_record(actor=actor, action="change", object_type="ingestion.source", object_id=source.pk,
                 summary=f"Rotated the write key of source {source.slug}", fields=["write_key"], request=request)
    return write_key


@transaction.atomic
def source_delete(*, source: Source, actor=None, request=None) -> None:
    """Delete a source and its inbox messages (profiles, identities and events stay)."""
    audit_record(actor=actor, action="delete", object_type="ingestion.source", object_id=source.pk,
                 summary=f"Deleted source {source.slug}", request=request)
    source.delete()
    _keys_forget()
