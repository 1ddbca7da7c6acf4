"""The cyclic garbage collector held off while kvstore builds or packs a large value, and that value aged after.

A collection traverses every member of every container in the generations it collects, holding the GIL: a
list of 8 million members costs 35-40 ms a pass on this machine, more when the cores are shared. A list built
by ``msgpack`` is new, so the young collections (started by any thread's allocations, the event loop's too)
walk it until it is old: in the concurrency benchmark's large-value scenario such passes took 73 to 201 ms
each on a loaded machine (31 to 39 ms of CPU). With the collector run 7 times as often there (standing in for
an application that allocates), the p99 of small gets beside the list was 38, 65 and 224 ms in three runs
before this module and 10, 15 and 18 ms with it. So while a large value is built (``building``):

- the collector is off (``gc.disable``), process-wide, counted across threads: the last to finish turns it
  back on, unless it was off when the first began; an explicit ``gc.collect()`` still runs meanwhile;
- when the last one finishes, every object tracked until then is moved to the oldest generation at once
  (``gc.freeze`` then ``gc.unfreeze``: two splices of linked lists, no traversal), so the new value is walked
  only by full collections, which are rare. This is skipped when the program has frozen objects of its own
  (``gc.get_freeze_count()``), which it would unfreeze.

What it costs other code: while a large value is built, no automatic collection runs (cyclic garbage waits as
long as the build, half a second for 8 million members); and young objects of other threads are aged with the
value, so their garbage cycles are found by the next full collection rather than a young one. Only values of
at least ``LARGE_BYTES`` (``_pieces.LARGE_MEMBERS`` members, packing) are built this way.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

LARGE_BYTES: Final = 1024 * 1024
"""The encoded size from which a value is built with the collector held off: a collection's pass over what a
MiB of msgpack holds (up to a million members) costs a few milliseconds; below that, a pass costs less than
the switch interval (5 ms) a thread already waits."""

_lock = threading.Lock()
_builders = 0  # values being built now, in every thread
_was_enabled = False  # whether the collector was on when the first of them began


@contextmanager
def building() -> Iterator[None]:
    """Hold the collector off while the body builds a large value; restore it and age what exists after.

    Restored on every exit, an error's included. A program that turns the collector off or on meanwhile is
    overruled when the last build ends: the state then is the one found when the first began.
    """
    global _builders, _was_enabled
    with _lock:
        if _builders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _builders += 1
    try:
        yield
    finally:
        with _lock:
            _builders -= 1
            if _builders == 0:
                if gc.get_freeze_count() == 0:
                    gc.freeze()  # O(1): the generations' lists are moved whole, nothing is traversed
                    gc.unfreeze()  # the frozen objects go to the oldest generation
                if _was_enabled:
                    gc.enable()
