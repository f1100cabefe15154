"""Signals segments sends, always on commit, for activation (real-time triggers and syncs).

``segment_entered`` and ``segment_exited``: sent with ``segment_id`` and ``profile_ids`` (a sorted list of ints,
at most ``SIGNAL_CHUNK`` per send) after a transaction that changed the segment's membership has committed.
"""

from django.db import transaction
from django.dispatch import Signal

from segments.models import Segment

segment_entered = Signal()
segment_exited = Signal()

SIGNAL_CHUNK = 1000


def memberships_changed_on_commit(segment_id: int, *, entered, exited) -> None:
    for signal, ids in ((segment_entered, sorted(entered)), (segment_exited, sorted(exited))):
        for start in range(0, len(ids), SIGNAL_CHUNK):
            chunk = ids[start:start + SIGNAL_CHUNK]
            transaction.on_commit(lambda signal=signal, chunk=chunk: signal.send(
                sender=Segment, segment_id=segment_id, profile_ids=chunk))
