"""The roles, defined in code. ``manage.py sync_roles`` makes the groups match this.

A permission spec is "app_label.codename", where the codename may end in ``*`` (``profiles.view_*``), or
"app_label.*" for every permission of an app. Specs are expanded against the permissions that exist, so a
new model falls into the roles without editing this file.
"""

MARKETING = "Marketing"
SALES = "Sales"
SERVICE = "Service"
PRIVACY = "Privacy"
ADMIN = "Admin"

ROLES: dict[str, dict] = {
    MARKETING: {
        "description": "Builds segments and campaigns. Sees profiles with personal data masked.",
        "permissions": [
            "profiles.view_*",
            "profiles.add_computedtrait",
            "profiles.change_computedtrait",
            "profiles.delete_computedtrait",
            "profiles.add_insightmodel",  # "Run now" on the Insights page
            "ingestion.view_*",
            "consent.view_*",
            "segments.*",
            "activation.*",
        ],
    },
    SALES: {
        "description": "Works with customers: sees profiles unmasked, reads segments and activations.",
        "permissions": [
            "core.view_pii",
            "profiles.view_*",
            "profiles.add_note",
            "consent.view_*",
            "segments.view_*",
            "activation.view_*",
        ],
    },
    SERVICE: {
        "description": "The call center: sees profiles unmasked, adds notes and interactions, records consent, "
                       "reads the personalization API (the offer for the caller).",
        "permissions": [
            "core.view_pii",
            "profiles.view_*",
            "profiles.add_note",
            "consent.view_*",
            "consent.add_consentrecord",
            "segments.view_segment",
            "activation.personalize",
        ],
    },
    PRIVACY: {
        "description": "The data protection officer: data-subject requests, consent, audit log.",
        "permissions": [
            "core.view_pii",
            "core.view_auditentry",
            "profiles.view_*",
            "consent.*",
            "ingestion.view_*",
            "segments.view_*",
            "activation.view_*",
        ],
    },
    ADMIN: {
        "description": "Runs the installation: every permission.",
        "permissions": ["*"],
    },
}
