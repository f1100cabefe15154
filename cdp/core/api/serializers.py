from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cdp.core.masking import mask_data_for, mask_for, mask_traits
from cdp.core.models import AuditEntry


@extend_schema_field(OpenApiTypes.STR)
class PIIField(serializers.Field):
    """A read-only value that is masked unless the requesting user may see personal data."""

    def __init__(self, kind: str = "text", **kwargs):
        self.kind = kind
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        request = self.context.get("request")
        return mask_for(getattr(request, "user", None), value, self.kind)


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "Traits; personal ones are masked without the view_pii permission."})
class PIITraitsField(serializers.Field):
    """A dict of traits whose personal ones are masked for users without view_pii."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        request = self.context.get("request")
        return mask_traits(getattr(request, "user", None), value or {})


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "Free-form data (event properties, context); personal data inside it is masked "
                                     "at every depth without the view_pii permission."})
class PIIDataField(serializers.Field):
    """Free-form JSON whose personal data is masked, at every depth, for users without view_pii."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        request = self.context.get("request")
        return mask_data_for(getattr(request, "user", None), value if value is not None else {})


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor_name", "action", "object_type", "object_id", "profile_id", "summary",
                  "fields", "path"]
