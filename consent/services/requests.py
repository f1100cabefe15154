"""Data-subject requests (GDPR Art. 15-21): received, verified, carried out, every step on the request's trail.

- access: a ZIP of JSON files, everything every app holds (``cdp.core.registry.export_all``); each download is
  audited;
- erasure: ``cdp.core.registry.erase_all`` in every store, then the profile row, then the keyed hashes of every
  identifier on the suppression list (new data carrying them is rejected by the pipeline);
- rectification: the corrected traits through profiles' lineage, with the request as the source;
- restriction and objection: the profile is frozen out of activation until the request is lifted.
"""

import io
import json
import zipfile
from datetime import datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from cdp.core import registry
from cdp.core.models import AuditEntry
from cdp.core.services import audit_record
from consent import suppression
from consent.models import DataSubjectRequest, RequestStep, SuppressedIdentifier
from profiles.models import Identity, Profile
from profiles.selectors import profile_lookup, profile_resolve
from profiles.services import profile_traits_update
from profiles.signals import profile_changed_on_commit

# GDPR Art. 12(3): an answer within one month of receipt.
ANSWER_WITHIN = timedelta(days=30)
ERASED = "[erased]"
# The traits whose values are scrubbed from a request's free text after an erasure, besides the identifiers.
NAME_TRAITS = ("first_name", "last_name", "name", "email", "phone")


class RequestInvalid(ValueError):
    """A request that cannot be made or carried out; ``field`` names the input at fault, if any."""

    def __init__(self, message: str, *, field: str = "", code: str = "invalid"):
        super().__init__(message)
        self.field, self.code = field, code


def _actor_name(actor) -> str:
    return actor.get_username() if actor is not None and getattr(actor, "is_authenticated", False) else "system"


def request_step_add(*, request: DataSubjectRequest, action: str, actor=None, detail: str = "") -> RequestStep:
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return RequestStep.objects.create(request=request, action=action, actor=user, actor_name=_actor_name(actor),
                                      detail=detail)


def subject_find(*, identifier_type: str, identifier: str) -> Profile | None:
    """The live profile an identifier names (through the identity graph; a profile id follows merges)."""
    if identifier_type == DataSubjectRequest.IdentifierType.PROFILE_ID:
        return profile_resolve(profile_id=int(identifier)) if str(identifier).strip().isdigit() else None
    return profile_lookup(identity_type=identifier_type, value=identifier)


def _suppressing_request(identifier_type: str, identifier: str) -> SuppressedIdentifier | None:
    if identifier_type == DataSubjectRequest.IdentifierType.PROFILE_ID:
        return None
    digests = [suppression.digest(identifier_type, form) for form in suppression.forms(identifier_type, identifier)]
    return SuppressedIdentifier.objects.filter(digest__in=digests).first()


@transaction.atomic
def request_create(*, kind: str, identifier_type: str, identifier: str, verification_note: str = "",
                   changes: dict | None = None, reference: str = "", received_at: datetime | None = None,
                   actor=None) -> DataSubjectRequest:
    """Open a request for the person an identifier names. A verification note makes it verified at once.

    Raises RequestInvalid (nothing is created) for an unknown subject, a subject already erased, a second open
    erasure of the same person, or a rectification without changes."""
    identifier = str(identifier or "").strip()
    if kind not in DataSubjectRequest.Kind.values:
        raise RequestInvalid(f"kind must be one of {', '.join(DataSubjectRequest.Kind.values)}.", field="kind")
    if identifier_type not in DataSubjectRequest.IdentifierType.values:
        raise RequestInvalid(f"identifier_type must be one of {', '.join(DataSubjectRequest.IdentifierType.values)}.",
                             field="identifier_type")
    if not identifier:
        raise RequestInvalid("An identifier is needed to find the person.", field="identifier")
    if kind == DataSubjectRequest.Kind.RECTIFICATION and not (isinstance(changes, dict) and changes):
        raise RequestInvalid("A rectification needs the corrected traits, as an object of trait names and values.",
                             field="changes")
    profile = subject_find(identifier_type=identifier_type, identifier=identifier)
    if profile is None:
        erased = _suppressing_request(identifier_type, identifier)
        if erased is not None:
            by = f" by request #{erased.request_id}" if erased.request_id else ""
            raise RequestInvalid(f"This person has already been erased{by}; nothing is held about them.",
                                 field="identifier", code="already_erased")
        raise RequestInvalid(f"No person is known by this {identifier_type.replace('_', ' ')}.",
                             field="identifier", code="unknown_subject")
    if kind == DataSubjectRequest.Kind.ERASURE:
        open_erasure = DataSubjectRequest.objects.filter(profile=profile, kind=kind,
                                                         status__in=DataSubjectRequest.OPEN).first()
        if open_erasure is not None:
            raise RequestInvalid(f"An erasure of this person is already open (request #{open_erasure.pk}).",
                                 field="identifier", code="already_open")
    received_at = received_at or timezone.now()
    note = (verification_note or "").strip()
    request = DataSubjectRequest.objects.create(
        kind=kind, identifier_type=identifier_type, identifier=identifier, profile=profile,
        verification_note=note, changes=changes or {}, reference=reference, received_at=received_at,
        due_at=received_at + ANSWER_WITHIN, created_by=actor if getattr(actor, "is_authenticated", False) else None,
        status=DataSubjectRequest.Status.VERIFIED if note else DataSubjectRequest.Status.RECEIVED)
    request_step_add(request=request, action=RequestStep.Action.RECEIVED, actor=actor,
                     detail=f"{request.get_kind_display()}, due {request.due_at:%Y-%m-%d}")
    if note:
        request_step_add(request=request, action=RequestStep.Action.VERIFIED, actor=actor)
    return request


def _locked(request: DataSubjectRequest) -> DataSubjectRequest:
    return DataSubjectRequest.objects.select_for_update().get(pk=request.pk)


@transaction.atomic
def request_verify(*, request: DataSubjectRequest, verification_note: str, actor=None) -> DataSubjectRequest:
    request = _locked(request)
    note = (verification_note or "").strip()
    if not note:
        raise RequestInvalid("Say how the requester's identity was verified.", field="verification_note")
    if not request.is_open:
        raise RequestInvalid(f"The request is {request.get_status_display().lower()}.", code="not_open")
    request.verification_note, request.status = note, DataSubjectRequest.Status.VERIFIED
    request.save(update_fields=["verification_note", "status"])
    request_step_add(request=request, action=RequestStep.Action.VERIFIED, actor=actor)
    return request


@transaction.atomic
def request_note_add(*, request: DataSubjectRequest, text: str, actor=None) -> RequestStep:
    text = (text or "").strip()
    if not text:
        raise RequestInvalid("The note is empty.", field="text")
    return request_step_add(request=request, action=RequestStep.Action.NOTE, actor=actor, detail=text)


@transaction.atomic
def request_reject(*, request: DataSubjectRequest, reason: str, actor=None) -> DataSubjectRequest:
    request = _locked(request)
    reason = (reason or "").strip()
    if not reason:
        raise RequestInvalid("Give the reason for the rejection (it is part of the answer).", field="reason")
    if not request.is_open:
        raise RequestInvalid(f"The request is {request.get_status_display().lower()}.", code="not_open")
    request.status, request.completed_at = DataSubjectRequest.Status.REJECTED, timezone.now()
    request.result = {"reason": reason}
    request.save(update_fields=["status", "completed_at", "result"])
    request_step_add(request=request, action=RequestStep.Action.REJECTED, actor=actor, detail=reason)
    return request


def _subject(request: DataSubjectRequest) -> Profile:
    profile = profile_resolve(profile_id=request.profile_id) if request.profile_id else None
    if profile is None:
        raise RequestInvalid("The person of this request no longer exists (erased).", code="subject_gone")
    return profile


@transaction.atomic
def request_complete(*, request: DataSubjectRequest, actor=None, http_request=None) -> DataSubjectRequest:
    """Carry out a verified request (see the module's docstring for each kind). Raises RequestInvalid when it is
    not verified, already closed, or its subject is gone."""
    request = _locked(request)
    if request.status == DataSubjectRequest.Status.RECEIVED:
        raise RequestInvalid("Verify the requester's identity first (a verification note).",
                             code="not_verified")
    if not request.is_open:
        raise RequestInvalid(f"The request is already {request.get_status_display().lower()}.", code="not_open")
    profile = _subject(request)
    kind = request.kind
    if kind == DataSubjectRequest.Kind.ERASURE:
        request.result = _erase(request, profile, actor=actor, http_request=http_request)
        detail = "Erased: " + ", ".join(f"{app} {n}" for app, n in request.result["rows"].items()) + \
            f"; {request.result['suppressed']} identifiers suppressed"
    elif kind == DataSubjectRequest.Kind.RECTIFICATION:
        profile_traits_update(profile=profile, traits=request.changes, source=f"privacy_request:{request.pk}")
        request.result = {"traits": sorted(request.changes)}
        detail = "Corrected traits: " + ", ".join(sorted(request.changes))
        audit_record(actor=actor, action=AuditEntry.Action.CHANGE, object_type="profiles.profile",
                     object_id=profile.pk, profile_id=profile.pk, fields=sorted(request.changes),
                     summary=f"Rectified for data-subject request #{request.pk}", request=http_request)
    elif kind in DataSubjectRequest.FREEZING:
        request.profile = profile
        detail = "The profile is kept out of activation until the request is lifted."
        profile_changed_on_commit([profile.pk])
    else:
        detail = "Answered with the export."
    request.status, request.completed_at = DataSubjectRequest.Status.COMPLETED, timezone.now()
    request.save()
    request_step_add(request=request, action=RequestStep.Action.COMPLETED, actor=actor, detail=detail)
    return request


@transaction.atomic
def request_lift(*, request: DataSubjectRequest, reason: str = "", actor=None) -> DataSubjectRequest:
    """End a restriction or objection: the profile may be activated again (within its consent)."""
    request = _locked(request)
    if not request.freezes:
        raise RequestInvalid("Only a completed restriction or objection that is in force can be lifted.",
                             code="not_in_force")
    request.lifted_at = timezone.now()
    request.save(update_fields=["lifted_at"])
    request_step_add(request=request, action=RequestStep.Action.LIFTED, actor=actor, detail=(reason or "").strip())
    if request.profile_id:
        profile_changed_on_commit([request.profile_id])
    return request


# --- access -----------------------------------------------------------------------------------------------------


@transaction.atomic
def request_export(*, request: DataSubjectRequest, actor=None, http_request=None) -> tuple[str, bytes]:
    """The subject's data as a ZIP of JSON files (one per app, and a manifest). Each download is audited and
    appears on the request's trail. Returns (file name, bytes)."""
    if request.kind != DataSubjectRequest.Kind.ACCESS:
        raise RequestInvalid("Only an access request has an export.", code="not_access")
    if request.status == DataSubjectRequest.Status.RECEIVED:
        raise RequestInvalid("Verify the requester's identity first (a verification note).",
                             code="not_verified")
    if request.status == DataSubjectRequest.Status.REJECTED:
        raise RequestInvalid("The request was rejected.", code="not_open")
    profile = _subject(request)
    exported = registry.export_all(profile)
    manifest = {"request": request.pk, "kind": request.kind, "profile_id": profile.pk,
                "generated_at": timezone.now().isoformat(), "files": [f"{app}.json" for app in exported],
                "format": "One JSON file per part of the platform; times in ISO 8601 (UTC)."}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        for app, data in exported.items():
            archive.writestr(f"{app}.json", json.dumps(data, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder))
    audit_record(actor=actor, action=AuditEntry.Action.EXPORT, object_type="consent.datasubjectrequest",
                 object_id=request.pk, profile_id=profile.pk, fields=sorted(exported),
                 summary=f"Downloaded the export of data-subject request #{request.pk}", request=http_request)
    request_step_add(request=request, action=RequestStep.Action.EXPORTED, actor=actor,
                     detail=f"{len(exported)} parts")
    return f"privacy-request-{request.pk}-export.zip", buffer.getvalue()


# --- erasure ----------------------------------------------------------------------------------------------------


def _identifiers(profile: Profile) -> set[tuple[str, str]]:
    """Every identifier of the person (live profile and merged tombstones), in every form it may arrive in."""
    ids = [profile.pk, *Profile.objects.filter(merged_into=profile).values_list("id", flat=True)]
    found: set[tuple[str, str]] = set()
    for identity_type, value, raw in Identity.objects.filter(profile_id__in=ids).values_list(
            "type", "value", "raw_value"):
        for text in filter(None, {value, raw}):
            found.update((identity_type, form) for form in suppression.forms(identity_type, text))
    for name in ("email", "phone"):
        value = (profile.traits or {}).get(name)
        if isinstance(value, str) and value.strip():
            found.update((name, form) for form in suppression.forms(name, value.strip()))
    return found


def _scrub_values(profile: Profile, identifiers: set[tuple[str, str]], request: DataSubjectRequest) -> list[str]:
    values = {value for _, value in identifiers} | {request.identifier}
    values |= {str(profile.traits.get(name)) for name in NAME_TRAITS if (profile.traits or {}).get(name)}
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def _scrub(text: str, values: list[str]) -> str:
    for value in values:
        if value.lower() in text.lower():
            start = text.lower().find(value.lower())
            while start >= 0:
                text = text[:start] + ERASED + text[start + len(value):]
                start = text.lower().find(value.lower(), start + len(ERASED))
    return text


def _erase(request: DataSubjectRequest, profile: Profile, *, actor, http_request) -> dict:
    identifiers = _identifiers(profile)
    values = _scrub_values(profile, identifiers, request)
    person_requests = list(DataSubjectRequest.objects.filter(profile=profile).exclude(pk=request.pk)) + [request]
    rows = registry.erase_all(profile)
    rows["profile"] = Profile.objects.filter(pk=profile.pk).delete()[0]
    created = SuppressedIdentifier.objects.bulk_create(
        [SuppressedIdentifier(digest=suppression.digest(t, v), identity_type=t, request=request)
         for t, v in sorted(identifiers)], ignore_conflicts=True)
    # The person's requests stay as evidence, without their identifiers or name in any text.
    for item in person_requests:
        item.identifier, item.profile, item.changes = "", None, {}
        item.verification_note = _scrub(item.verification_note, values)
        if item.pk != request.pk:
            item.save(update_fields=["identifier", "profile", "changes", "verification_note"])
        for step in RequestStep.objects.filter(request=item):
            scrubbed = _scrub(step.detail, values)
            if scrubbed != step.detail:
                RequestStep.objects.filter(pk=step.pk).update(detail=scrubbed)
    audit_record(actor=actor, action=AuditEntry.Action.ERASE, object_type="profiles.profile", object_id=profile.pk,
                 summary=f"Erased for data-subject request #{request.pk}", request=http_request)
    return {"rows": rows, "suppressed": len(created)}
