from django.conf import settings
from django.db import models


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit log is append-only.")

    def delete(self):
        raise PermissionError("The audit log is append-only; retention uses AuditEntry.objects.purge().")

    def purge(self):
        """Delete these entries for good: only retention and erasure call this."""
        return models.QuerySet.delete(self)


class AuditEntry(models.Model):
    """Who viewed, exported or changed personal data, when, and what. Append-only."""

    class Action(models.TextChoices):
        VIEW = "view", "Viewed"
        EXPORT = "export", "Exported"
        CREATE = "create", "Created"
        CHANGE = "change", "Changed"
        DELETE = "delete", "Deleted"
        ERASE = "erase", "Erased"
        MERGE = "merge", "Merged"
        LOGIN = "login", "Logged in"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, blank=True, help_text="Kept when the user is deleted.")
    action = models.CharField(max_length=16, choices=Action.choices, db_index=True)
    object_type = models.CharField(max_length=64, db_index=True, help_text="app_label.model of what was touched")
    object_id = models.CharField(max_length=64, blank=True)
    profile_id = models.BigIntegerField(null=True, blank=True, db_index=True,
                                        help_text="The person concerned, if any.")
    summary = models.CharField(max_length=255, blank=True)
    fields = models.JSONField(default=list, blank=True, help_text="Names of the fields seen or changed, never values.")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=255, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        permissions = [
            ("view_pii", "Can see personal data unmasked"),
        ]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action} {self.object_type}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit log is append-only.")
