from django.core.management.base import BaseCommand

from cdp.core.services import roles_sync


class Command(BaseCommand):
    help = "Create the groups Marketing, Sales, Service, Privacy and Admin with the permissions cdp.core.roles gives."

    def handle(self, *args, **options):
        for name, count in roles_sync().items():
            self.stdout.write(f"{name}: {count} permissions")
