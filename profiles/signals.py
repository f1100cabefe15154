"""Signals profiles sends, always on commit. A receiver only enqueues a task; the task calls a service.

``profile_changed``: sent with ``profile_ids`` (a sorted list of ints) after a transaction that created profiles,
attached identities, changed traits or appended events has committed.
"""

from django.db import transaction
from django.dispatch import Signal

from profiles.models import Profile

profile_changed = Signal()


def profile_changed_on_commit(profile_ids) -> None:
    """Send ``profile_changed`` once the current transaction commits (at once outside a transaction)."""
    ids = sorted({int(pk) for pk in profile_ids})
    if ids:
        transaction.on_commit(lambda: profile_changed.send(sender=Profile, profile_ids=ids))

# ``profiles_merged``: sent once per merge batch after it has committed, with ``merges``: a list of
# {"merge_id", "winner_id", "loser_id"} (one entry per merge; a single merge is a batch of one);
# ``profiles_unmerged`` with the same argument (one entry) after an undo has committed.
profiles_merged = Signal()
profiles_unmerged = Signal()


def profiles_merged_on_commit(*, merges: list[dict], undone: bool = False) -> None:
    signal = profiles_unmerged if undone else profiles_merged
    if merges:
        transaction.on_commit(lambda: signal.send(sender=Profile, merges=merges))
