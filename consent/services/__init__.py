"""Every write of consent. Keyword-only arguments, <noun>_<verb>, atomic.

A package: ``decisions`` (purposes, consent records, the tracking API's consent context), ``requests``
(data-subject requests: access, erasure, rectification, restriction, objection), ``suppression`` (the counter of
rejected data of erased people) and ``retention`` (policies and the nightly run). Everything public is
re-exported here.
"""

from consent.services.decisions import (
    STOCK_CATEGORIES,
    STOCK_PURPOSES,
    ConsentContext,
    PurposeUnknown,
    category_purposes,
    consent_contexts_apply,
    consent_from_context,
    consent_observations_apply,
    consent_record,
    personal_data_erase,
    personal_data_export,
    purposes_install,
)
from consent.services.requests import (
    ANSWER_WITHIN,
    RequestInvalid,
    request_complete,
    request_create,
    request_export,
    request_lift,
    request_note_add,
    request_reject,
    request_verify,
    subject_find,
)
from consent.services.retention import (
    PolicyInvalid,
    events_delete_batch,
    retention_policy_delete,
    retention_policy_save,
    retention_run,
)
from consent.services.suppression import suppression_hits_record

__all__ = [
    "ANSWER_WITHIN",
    "STOCK_CATEGORIES",
    "STOCK_PURPOSES",
    "ConsentContext",
    "PolicyInvalid",
    "PurposeUnknown",
    "RequestInvalid",
    "category_purposes",
    "consent_contexts_apply",
    "consent_from_context",
    "consent_observations_apply",
    "consent_record",
    "events_delete_batch",
    "personal_data_erase",
    "personal_data_export",
    "purposes_install",
    "request_complete",
    "request_create",
    "request_export",
    "request_lift",
    "request_note_add",
    "request_reject",
    "request_verify",
    "retention_policy_delete",
    "retention_policy_save",
    "retention_run",
    "subject_find",
    "suppression_hits_record",
]
