"""``manage.py rotate_encryption_key``: encrypt everything stored encrypted again with the first key of
CDP_ENCRYPTION_KEYS, so that the older keys can be removed (docs/operations.md, docs/privacy.md)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cdp.core import crypto


class Command(BaseCommand):
    help = ("Re-encrypt every encrypted store (sensitive traits, destination secrets, ...) with the first key of "
            "CDP_ENCRYPTION_KEYS and print how many values each re-encrypted. Run it after putting a new key "
            "first; then remove the old key.")

    def handle(self, *args, **options):
        crypto.keys_changed()  # the keys as configured now
        handlers = crypto.rotation_handlers()
        keys = len(settings.CDP_ENCRYPTION_KEYS)
        self.stdout.write(f"Re-encrypting with the first of {keys} key{'s' if keys != 1 else ''} of "
                          f"CDP_ENCRYPTION_KEYS ({len(handlers)} store{'s' if len(handlers) != 1 else ''}).")
        total = 0
        for label, rotate_all in sorted(handlers.items()):
            try:
                count = rotate_all()
            except crypto.DecryptionError as error:
                raise CommandError(
                    f"{label}: a stored value could not be decrypted with any key of CDP_ENCRYPTION_KEYS ({error}). "
                    "Put the key that encrypted it back into CDP_ENCRYPTION_KEYS (after the new one) and run "
                    "the command again; what was re-encrypted so far stays re-encrypted.") from error
            total += count
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} value{'s' if total != 1 else ''} re-encrypted. "
                                             "Keys other than the first can be removed now."))
