"""Example segments for the demo data, built through the real services (and so checked against the data)."""

from django.core.management.base import BaseCommand

from segments import rules as rule_tree
from segments.models import Segment
from segments.services import segment_create

DEMO_SEGMENTS = [
    ("Cart abandoners", "Added to the cart in the last 7 days, then no order within 24 hours.",
     {"type": "sequence", "first": {"event": "Product Added"}, "then": {"event": "Order Completed"},
      "op": "not_followed_by", "within_hours": 24, "first_within_days": 7}),
    ("Intends to cancel", "Told the call center in the last 90 days that they intend to cancel.",
     {"type": "event", "event": "Call Center Note", "op": "performed", "within_days": 90,
      "where": [{"property": "subject", "op": "in", "value": ["Kündigung", "Cancellation"]}]}),
    ("Valuable customers", "Lifetime value of at least 500 and an order in the last 180 days.",
     {"type": "group", "op": "and", "children": [
         {"type": "computed", "trait": "lifetime_value", "op": "gte", "value": 500},
         {"type": "event", "event": "Order Completed", "op": "performed", "within_days": 180}]}),
    ("Newsletter audience", "Has an e-mail address and granted e-mail marketing.",
     {"type": "group", "op": "and", "children": [
         {"type": "identity", "identity_type": "email", "op": "exists"},
         {"type": "consent", "purpose": "email_marketing", "op": "granted"}]}),
]


class Command(BaseCommand):
    help = "Create the demo's example segments (those whose name is not taken yet and whose data exists)."

    def handle(self, *args, **options):
        for name, description, rules in DEMO_SEGMENTS:
            if Segment.objects.filter(name=name).exists():
                continue
            try:
                segment = segment_create(name=name, description=description, rules=rules)
            except rule_tree.RuleError as error:  # e.g. no notes in the data yet
                self.stdout.write(f"Skipped segment {name!r}: {error}")
                continue
            segment.refresh_from_db()
            self.stdout.write(f"Segment {name!r}: {segment.size} members")
