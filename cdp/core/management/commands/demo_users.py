from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from cdp.core.roles import ADMIN, ROLES

DEMO_PASSWORD = "cdp-demo"  # noqa: S105 - the documented demo login of the embedded default


class Command(BaseCommand):
    help = "Create one demo user per role (for the embedded default only) and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=DEMO_PASSWORD)

    @transaction.atomic
    def handle(self, *args, password, **options):
        from django.conf import settings

        if settings.PRODUCTION:
            self.stderr.write("demo_users refuses to run in production.")
            return
        User = get_user_model()
        for role in ROLES:
            username = role.lower()
            user, created = User.objects.get_or_create(username=username, defaults={"first_name": role})
            if created:
                user.set_password(password)
                user.is_staff = role == ADMIN
                user.is_superuser = role == ADMIN
                user.save()
            user.groups.add(Group.objects.get(name=role))
        self.stdout.write(
            f"Demo login: http://{settings.HOST}:{settings.PORT}/  user 'admin', password '{password}' "
            f"(also {', '.join(r.lower() for r in ROLES if r != ADMIN)}, each with its role)"
        )
