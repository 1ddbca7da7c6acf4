"""Hostile input for the rest of the API: keys-only listing, count, delete_prefix, atomic and watch.

The same rules as in test_hostile_input.py: the only exceptions are KVErrors, and a rejected call
changes no stored row. A failed atomic commit — a check that does not hold, or arithmetic on a value
that is not an integer or would overflow — writes nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import AtomicOperation, CommitResult, KeyPage, KVError, Watch

from ._hostile import (
    LIST_OPTIONS,
    SET_OPTIONS,
    Booby,
    Target,
    anything,
    attempt,
    keys,
    pick_space,
    prefixes,
    values,
    versionstamps,
)
from ._support import dump, stamp_number

pytestmark = pytest.mark.reliability

RANGE_OPTIONS: Final = {name: LIST_OPTIONS[name] for name in ("start", "end")}
ATOMIC_SET_OPTIONS: Final = {
    name: SET_OPTIONS[name] for name in SET_OPTIONS if name not in ("if_versionstamp", "if_not_exists", "overwrite")
}
INT_KEYS: Final = st.sampled_from(["k_", "kx", "k/a", "k/sum"])  # ints, a dict, and a key that may be missing
operands = st.one_of(st.integers(), st.sampled_from([2**63 - 1, -(2**63), 2**63, 1, -1]), anything)


@given(data=st.data())
def test_list_keys_and_count_with_hostile_arguments(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    prefix = data.draw(prefixes, label="prefix")
    options: dict[str, Any] = data.draw(st.fixed_dictionaries({}, optional=LIST_OPTIONS), label="options")
    page = attempt(target, lambda: space.list_keys(prefix, **options))
    bounds = {name: options[name] for name in ("start", "end") if name in options}
    counted = attempt(target, lambda: space.count(prefix, **bounds))
    if isinstance(page, KVError) or isinstance(counted, KVError):
        return
    assert isinstance(page, KeyPage)
    assert all(isinstance(key, str) and key.startswith(prefix) for key in page)
    if "limit" not in options and "cursor" not in options:
        assert len(page) == counted
        listed = space.list(prefix, **bounds)
        assert listed.keys == sorted(page.keys)


OTHERS: Final = "SELECT * FROM kvstore_entries WHERE namespace != 'doomed' ORDER BY id"


@given(data=st.data())
def test_delete_prefix_with_hostile_arguments(target: Target, data: st.DataObject) -> None:
    """delete_prefix removes exactly the keys under the prefix, in this namespace only, or nothing."""
    space = target.kv.namespace("doomed")
    for key in ("d/a", "d/b", "d_", "dx", "e/a"):
        last = space.set(key, 1).versionstamp
    prefix = data.draw(st.one_of(st.sampled_from(["d/", "d_", "d", ""]), prefixes), label="prefix")
    batch = data.draw(
        st.one_of(st.none(), st.integers(-2, 3), st.sampled_from([2**63, 2**64]), anything), label="batch"
    )
    others = target.conn.execute("SELECT * FROM kvstore_entries WHERE namespace != 'doomed' ORDER BY id").fetchall()
    if batch is None:
        deleted = attempt(target, lambda: space.delete_prefix(prefix))
    else:
        deleted = attempt(target, lambda: space.delete_prefix(prefix, batch_size=batch))
    assert (
        target.conn.execute("SELECT * FROM kvstore_entries WHERE namespace != 'doomed' ORDER BY id").fetchall()
        == others
    )
    if isinstance(deleted, KVError):
        return
    assert isinstance(prefix, str)
    left = [key for (key,) in target.conn.execute("SELECT key FROM kvstore_entries WHERE namespace = 'doomed'")]
    assert not [key for key in left if key.startswith(prefix)]
    assert sorted(left) == sorted(key for key in ("d/a", "d/b", "d_", "dx", "e/a") if not key.startswith(prefix))
    assert deleted == 5 - len(left)
    # The store's one writer draws consecutive versionstamps: the next write shows whether the delete drew any.
    after = target.kv.namespace("probe").set("next", 1).versionstamp
    assert last is not None
    assert after is not None
    assert (stamp_number(after) > stamp_number(last) + 1) == (deleted > 0)


Step = tuple[Any, ...]
steps = st.one_of(
    st.tuples(st.just("check"), keys, st.one_of(st.none(), versionstamps)),
    st.tuples(st.just("set"), keys, values, st.fixed_dictionaries({}, optional=ATOMIC_SET_OPTIONS)),
    st.tuples(st.just("delete"), keys),
    st.tuples(st.sampled_from(["sum", "min", "max"]), st.one_of(INT_KEYS, keys), operands),
)


def _apply(operation: AtomicOperation, step: Step) -> Callable[[], object]:
    name, *args = step
    if name == "set":
        key, value, options = args
        return lambda: operation.set(key, value, **options)
    method: Callable[..., object] = getattr(operation, name)
    return lambda: method(*args)


@given(data=st.data())
def test_atomic_operations_built_from_hostile_steps(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    planned: Sequence[Step] = data.draw(st.lists(steps, max_size=5), label="steps")
    operation = space.atomic()
    before = dump(target.conn)
    for step in planned:
        attempt(target, _apply(operation, step))
    assert dump(target.conn) == before  # building writes nothing
    result = attempt(target, operation.commit)
    if isinstance(result, KVError):
        return
    assert isinstance(result, CommitResult)
    if not result.committed:
        assert dump(target.conn) == before, "a commit that wrote nothing changed the stored data"
    after = attempt(target, lambda: operation.set("k/late", 1))
    assert isinstance(after, KVError)  # a committed operation takes no more steps


@given(data=st.data())
def test_watch_with_hostile_keys_and_interval(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    watched = data.draw(
        st.one_of(st.lists(keys, max_size=3), anything.filter(lambda x: not isinstance(x, Booby))), label="keys"
    )
    interval = data.draw(st.one_of(st.just(0.05), st.floats(), st.integers(), anything), label="interval")
    watch = attempt(target, lambda: space.watch(watched, interval=interval))
    if isinstance(watch, KVError):
        return
    assert isinstance(watch, Watch)
    with watch:
        first = attempt(target, lambda: next(watch))
    assert isinstance(first, list)
    assert len(first) == len(list(watched))
    assert all(entry is None or entry.key == key for entry, key in zip(first, watched, strict=True))
