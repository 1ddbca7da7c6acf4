"""atomic(): checks then mutations, all or nothing, under one versionstamp."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta

import pytest

from kvstore import (
    AtomicLimitError,
    AtomicOperation,
    AtomicReusedError,
    CommitResult,
    FailedCheck,
    InvalidKeyError,
    InvalidOptionsError,
    InvalidTTLError,
    InvalidValueError,
    InvalidVersionstampError,
    KVStore,
    Value,
)
from kvstore import _write as write_path
from kvstore._backends.postgres.tx import PostgresTx
from kvstore._backends.sqlite.tx import SQLiteTx
from kvstore._group import GroupCommit, write_batch

from .conftest import FakeClock, Stores


def _stamp(kv: KVStore, key: str) -> str:
    entry = kv.get(key)
    assert entry is not None
    return entry.versionstamp


def _values(kv: KVStore, *keys: str) -> list[object]:
    return [None if entry is None else entry.value for entry in kv.get_many(keys)]


def test_chained_commit_applies_every_mutation_under_one_versionstamp(kv: KVStore) -> None:
    kv.set("gone", 1)
    before = kv.set("a", 1).versionstamp
    assert before is not None
    result = kv.atomic().check("a", before).set("a", 2).set("b", "x").delete("gone").sum("n", 5).commit()
    assert isinstance(result, CommitResult)
    assert (result.ok, result.committed, result.failed_checks) == (True, True, ())
    assert result.versionstamp is not None
    assert re.fullmatch(r"[0-9a-f]{20}", result.versionstamp)
    assert result.versionstamp > before
    assert _values(kv, "a", "b", "gone", "n") == [2, "x", None, 5]
    assert {_stamp(kv, key) for key in ("a", "b", "n")} == {result.versionstamp}


def test_context_manager_commits_on_a_clean_exit(kv: KVStore) -> None:
    with kv.atomic() as op:
        assert isinstance(op, AtomicOperation)
        op.check("k", None)
        op.set("k", 1)
        assert op.result is None
    assert op.result is not None
    assert op.result.ok
    assert _values(kv, "k") == [1]


def test_context_manager_discards_when_the_block_raises(kv: KVStore) -> None:
    op = kv.atomic()

    def change_my_mind() -> None:
        with op:
            op.set("k", 1)
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        change_my_mind()
    assert op.result is None
    assert kv.get("k") is None
    with pytest.raises(AtomicReusedError, match="already committed or discarded"):
        op.commit()


def test_a_committed_operation_cannot_be_reused(kv: KVStore) -> None:
    op = kv.atomic().set("k", 1)
    op.commit()
    with pytest.raises(AtomicReusedError, match="already committed"):
        op.set("k", 2)
    with pytest.raises(AtomicReusedError, match="already committed"):
        op.commit()


def test_failed_checks_write_nothing_and_say_which_and_why(kv: KVStore) -> None:
    a = kv.set("a", 1).versionstamp
    b = kv.set("b", 2).versionstamp
    assert a is not None
    assert b is not None
    result = (
        kv.atomic()
        .check("a", a)  # holds
        .check("b", a)  # wrong versionstamp
        .check("missing", b)  # absent, but a versionstamp was expected
        .check("a", None)  # present, but absence was expected
        .set("a", 100)
        .delete("b")
        .sum("c", 1)
        .commit()
    )
    assert (result.ok, result.committed, result.versionstamp) == (False, False, None)
    assert result.failed_checks == (FailedCheck(1, "b", b), FailedCheck(2, "missing", None), FailedCheck(3, "a", a))
    assert _values(kv, "a", "b", "c") == [1, 2, None]
    assert kv.set("z", 0).versionstamp == f"{int(b[:16], 16) + 1:016x}0000"  # no versionstamp was drawn


def test_checks_see_only_live_entries(kv: KVStore, clock: FakeClock) -> None:
    stamp = kv.set("k", 1, expire_in=60_000).versionstamp
    clock.advance(60)
    stale = kv.atomic().check("k", stamp).set("k", 2).commit()
    assert stale.failed_checks == (FailedCheck(0, "k", None),)
    assert kv.atomic().check("k", None).set("k", 3).commit().ok  # an expired entry counts as absent


def test_checks_only_and_noop_commits_draw_no_versionstamp(kv: KVStore) -> None:
    stamp = kv.set("k", 1).versionstamp
    only_checks = kv.atomic().check("k", stamp).commit()
    assert (only_checks.ok, only_checks.committed, only_checks.versionstamp) == (True, False, None)
    noop = kv.atomic().delete("missing").commit()
    assert (noop.ok, noop.versionstamp) == (True, None)
    assert kv.atomic().commit().ok


def test_set_in_an_atomic_takes_every_option_of_kv_set(kv: KVStore, clock: FakeClock) -> None:
    deadline = datetime.fromtimestamp(clock.now, UTC) + timedelta(hours=1)
    kv.atomic().set(
        "a", b"png", expire_in=120_000, refresh_on_access=True, metadata={"m": 1}, content_type="image/png"
    ).set("b", "text", expire_at=deadline).commit()
    a, b = kv.list()
    assert (a.value, a.metadata, a.content_type) == (b"png", {"m": 1}, "image/png")
    assert a.expires_at == datetime.fromtimestamp(clock.now, UTC) + timedelta(minutes=2)
    assert b.expires_at == deadline
    clock.advance(100)
    refreshed = kv.get("a")
    assert refreshed is not None
    assert refreshed.expires_at == datetime.fromtimestamp(clock.now, UTC) + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda op: op.set("bad key", 1), InvalidKeyError),
        (lambda op: op.set("k", {1}), InvalidValueError),
        (lambda op: op.set("k", 1, expire_in=59_999), InvalidTTLError),
        (lambda op: op.set("k", 1, refresh_on_access=True), InvalidOptionsError),
        (lambda op: op.set("k", 1, expire_in=60_000, expire_at=datetime(2030, 1, 1, tzinfo=UTC)), InvalidOptionsError),
        (lambda op: op.check("k", "nope"), InvalidVersionstampError),
        (lambda op: op.delete("a//b"), InvalidKeyError),
        (lambda op: op.sum("k", 1.5), InvalidValueError),
        (lambda op: op.sum("k", True), InvalidValueError),
        (lambda op: op.max("k", 2**63), InvalidValueError),
    ],
)
def test_bad_calls_raise_when_made_and_the_rest_still_commits(kv: KVStore, build: object, error: type) -> None:
    op = kv.atomic().set("before", 1)
    with pytest.raises(error):
        build(op)  # type: ignore[operator]
    op.set("after", 2).commit()
    assert _values(kv, "before", "after", "k") == [1, 2, None]


def test_sum_min_max(kv: KVStore) -> None:
    kv.atomic().sum("s", 5).min("lo", 3).max("hi", -3).commit()
    assert _values(kv, "s", "lo", "hi") == [5, 3, -3]  # a missing entry becomes the operand (Deno KV's rule)
    kv.atomic().sum("s", -7).min("lo", -2).max("hi", 9).commit()
    assert _values(kv, "s", "lo", "hi") == [-2, -2, 9]
    kv.atomic().min("lo", 10).max("hi", 1).commit()
    assert _values(kv, "lo", "hi") == [-2, 9]


def test_arithmetic_keeps_the_rest_of_the_entry(kv: KVStore, clock: FakeClock) -> None:
    first = kv.set("n", 1, metadata={"unit": "items"}, expire_in=120_000)
    clock.advance(1)
    kv.atomic().sum("n", 1).commit()
    entry = kv.get("n")
    assert entry is not None
    assert (entry.value, entry.metadata, entry.expires_at) == (2, {"unit": "items"}, first.expires_at)
    assert entry.updated_at > entry.created_at


def test_arithmetic_on_a_non_integer_is_a_validation_error_and_writes_nothing(kv: KVStore) -> None:
    values: tuple[Value, ...] = ("1", 1.0, True, None, [1], b"1")
    for value in values:
        kv.set("x", value)
        stamp = _stamp(kv, "x")
        with pytest.raises(InvalidValueError, match="needs an integer"):
            kv.atomic().set("other", 1).sum("x", 1).commit()
        assert _stamp(kv, "x") == stamp
        assert kv.get("other") is None


def test_sum_overflow_is_refused(kv: KVStore) -> None:
    kv.set("n", 2**63 - 1)
    with pytest.raises(InvalidValueError, match="64-bit"):
        kv.atomic().sum("n", 1).commit()
    kv.atomic().sum("n", -(2**63) + 1).commit()
    assert _values(kv, "n") == [0]


def test_mutations_apply_in_order_on_the_same_key(kv: KVStore) -> None:
    kv.set("k", 10)
    kv.atomic().sum("k", 1).delete("k").sum("k", 3).commit()
    assert _values(kv, "k") == [3]
    kv.atomic().set("j", 1).sum("j", 1).set("i", "x").delete("i").commit()
    assert _values(kv, "j", "i") == [2, None]


def test_atomic_is_scoped_to_its_namespace(kv: KVStore) -> None:
    stamp = kv.set("k", "default").versionstamp
    other = kv.namespace("other")
    assert not other.atomic().check("k", stamp).set("k", 1).commit().ok
    assert other.atomic().check("k", None).set("k", 1).commit().ok
    assert _values(kv, "k") == ["default"]


def test_limits_are_enforced_at_their_edges(stores: Stores) -> None:
    with stores.open(max_checks=2, max_mutations=2, max_commit_size=10) as kv:
        op = kv.atomic().check("a", None).check("b", None)
        with pytest.raises(AtomicLimitError, match="at most 2 checks"):
            op.check("c", None)
        op = kv.atomic().delete("a").delete("b")
        with pytest.raises(AtomicLimitError, match="at most 2 mutations"):
            op.delete("c")
        assert op.commit().ok  # the refused call left the operation usable
        with pytest.raises(AtomicLimitError, match="at most 10 bytes"):
            kv.atomic().set("k", b"x" * 20)
        assert kv.atomic().set("k", b"xxxx").commit().ok  # 1 byte of key + 6 of msgpack: within 10


def test_default_limits_exceed_deno_kv(stores: Stores) -> None:
    with stores.open() as kv:
        op = kv.atomic()
        for i in range(1000):
            op.check(f"c{i}", None)
        for i in range(1001):
            op.set(f"m{i}", i)
        with pytest.raises(AtomicLimitError):
            op.check("one-too-many", None)
        assert op.commit().ok
        assert kv.count() == 1001


def test_every_write_reaches_the_backend_through_the_write_path(kv: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sets of every shape, deletes, atomics, range deletes and write_batch blocks write only from
    ``kvstore._write``, through the store's group commit: the one module that calls the backend's writes."""
    callers: dict[str, list[str]] = {"backend": [], "group": []}

    def spy(target: object, side: str, name: str) -> None:
        real = getattr(target, name)

        def recording(*args: object) -> object:
            callers[side].append(sys._getframe(1).f_globals["__name__"])
            return real(*args)

        monkeypatch.setattr(target, name, recording)

    for name in ("try_put", "transact", "begin"):
        spy(kv._backend, "backend", name)
    for name in ("try_put", "transact"):
        spy(GroupCommit, "group", name)  # on the class: a GroupCommit has slots
    first = kv.set("a", 1)
    kv.set("a", 2, if_versionstamp=first.versionstamp)
    kv.set("b", 1, if_not_exists=True)
    kv.set("b", 2, overwrite=False)
    kv.set("c", 1, expire_in=60_000, metadata={"m": 1})
    kv.delete("a")
    kv.delete("b", if_versionstamp="00000000000000010000")
    kv.atomic().set("d", 1).commit()
    kv.atomic().check("d", None).set("e", 1).sum("n", 1).commit()
    kv.delete_prefix("c")
    with write_batch(kv):
        kv.set("f", 1)
        kv.namespace("other").atomic().sum("n", 1).commit()
    assert len(callers["group"]) >= 12
    assert set(callers["group"]) == {"kvstore._write"}
    assert set(callers["backend"]) == {"kvstore._group"}


def test_a_large_commit_applies_its_mutations_in_order(kv: KVStore, clock: FakeClock) -> None:
    """Past BULK_FROM mutations a commit reads current entries in bulk and batches its puts; the result is
    still every mutation applied in order, each seeing the ones before it."""
    assert write_path.BULK_FROM <= 40
    kv.set("keep", "old")
    kv.set("gone", 1)
    kv.set("count", 10)
    created = kv.get("keep")
    assert created is not None
    clock.advance(5)
    op = kv.atomic()
    for i in range(30):
        op.set(f"k{i:02d}", i)
    op.set("keep", "new").set("k00", "again").delete("gone").sum("count", 5).set("count", 100).sum("count", 1)
    op.set("gone", "back").delete("k01").sum("fresh", 3)
    result = op.commit()
    assert result.committed
    entries = {entry.key: entry for entry in kv.list()}
    assert {key: entry.value for key, entry in entries.items()} == {
        **{f"k{i:02d}": i for i in range(2, 30)},
        "k00": "again",
        "keep": "new",
        "gone": "back",
        "count": 101,
        "fresh": 3,
    }
    assert {entry.versionstamp for entry in entries.values()} == {result.versionstamp}
    assert entries["keep"].created_at == created.created_at  # overwritten, not created
    assert entries["keep"].updated_at > created.created_at
    assert entries["gone"].created_at == entries["k02"].created_at  # deleted, then created again


def test_a_large_commit_of_plain_sets_reads_no_entry(
    kv: KVStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of sets writes without reading what it replaces, and still keeps a live entry's creation."""
    kv.set("k03", "old")
    before = kv.get("k03")
    assert before is not None
    reads: list[str] = []
    for tx_class in (SQLiteTx, PostgresTx):
        for name in ("current", "current_many", "read"):
            real = getattr(tx_class, name)

            def spy(*args: object, _real: object = real, _name: str = name) -> object:
                reads.append(_name)
                return _real(*args)  # type: ignore[operator]

            monkeypatch.setattr(tx_class, name, spy)
    clock.advance(5)
    with kv.atomic() as op:
        for i in range(write_path.BULK_FROM + 4):
            op.set(f"k{i:02d}", i)
    assert op.result is not None
    assert op.result.committed
    assert reads == []
    after = kv.get("k03")
    assert after is not None
    assert after.value == 3
    assert after.created_at == before.created_at
    assert after.updated_at > before.created_at
    fresh = kv.get("k00")
    assert fresh is not None
    assert fresh.created_at == fresh.updated_at == after.updated_at


def test_a_large_commit_replaces_expired_entries_as_new(kv: KVStore, clock: FakeClock) -> None:
    kv.set("old", 1, expire_in=60_000)
    clock.advance(61)
    with kv.atomic() as op:
        for i in range(20):
            op.set(f"n{i}", i)
        op.set("old", 2)
    entry = kv.get("old")
    assert entry is not None
    assert entry.value == 2
    assert entry.expires_at is None
    assert entry.created_at == entry.updated_at
