"""The history checker of the contention test catches what it claims to catch (and passes what is fine).

Histories here are written by hand: a consistent one, and one of each kind of anomaly the checker must
report. Times are plain integers.
"""

from __future__ import annotations

import pytest

from ._history import Op, check_history

pytestmark = pytest.mark.reliability

K = ("default", "k")


def vs(n: int) -> str:
    return f"{n:016x}0000"


def write(
    n: int, start: int, end: int, *, created: bool = False, mode: str = "blind", expected: int | None = None
) -> Op:
    return Op(
        "write", *K, start, end, vs(n), f"t{n}", mode, None if expected is None else vs(expected), created
    )  # fmt: skip


def seen(n: int | None, start: int, end: int, tag: str | None = None) -> Op:
    return Op("seen", *K, start, end, None if n is None else vs(n), tag if tag is not None or n is None else f"t{n}")


def delete(n: int, start: int, end: int) -> Op:
    return Op("delete", *K, start, end, expected=vs(n))


def refused(n: int, start: int, end: int) -> Op:
    return Op("refused", *K, start, end, expected=vs(n))


def counter(n: int, number: int, start: int, end: int, expected: int | None) -> Op:
    mode = "blind" if expected is None else "cas"
    return Op(
        "write", "default", "n", start, end, vs(n), f"t{n}", mode, None if expected is None else vs(expected),
        expected is None, number,
    )  # fmt: skip


CONSISTENT = [
    seen(None, 0, 5),
    write(1, 1, 10, created=True),
    seen(None, 2, 4),  # overlaps the first write: it may not have happened yet
    seen(1, 8, 12),
    write(2, 11, 20, mode="cas", expected=1),
    refused(1, 15, 25),  # overlaps the write that replaced 1
    seen(1, 12, 14),  # overlaps write 2, which may come later
    seen(2, 21, 22),
    delete(2, 30, 40),
    seen(2, 31, 33),  # overlaps the delete
    seen(None, 35, 45),
    write(3, 50, 60, created=True, mode="nx"),
    write(4, 55, 70),  # a blind overwrite of 3, overlapping it
    seen(4, 71, 72),
    counter(5, 0, 100, 101, None),
    counter(6, 1, 102, 103, 5),
    counter(7, 2, 102, 109, 6),
]


def test_a_consistent_history_passes() -> None:
    assert check_history(CONSISTENT) == []


@pytest.mark.parametrize(
    ("ops", "complaint"),
    [
        pytest.param(
            [
                write(1, 0, 1, created=True),
                write(2, 2, 3, mode="cas", expected=1),
                write(3, 2, 4, mode="cas", expected=1),
            ],
            "lost update",
            id="two-cas-on-one-version",
        ),
        pytest.param([write(2, 0, 1, created=True), write(1, 5, 6)], "real time", id="real-time-inversion"),
        pytest.param([write(1, 0, 1, created=True), write(2, 2, 3), seen(1, 4, 5)], "stale read", id="stale-read"),
        pytest.param([write(1, 0, 1, created=True), seen(2, 4, 5)], "never committed", id="phantom-version"),
        pytest.param([write(1, 0, 1, created=True), seen(None, 4, 5)], "certainly live", id="lost-entry"),
        pytest.param([write(1, 0, 1, created=True), seen(1, 4, 5, "other")], "holds", id="wrong-value"),
        pytest.param([write(1, 5, 6, created=True), seen(1, 1, 2)], "before its write", id="read-from-future"),
        pytest.param([write(1, 0, 1, created=True), refused(1, 2, 3)], "refused while", id="wrong-refusal"),
        pytest.param([write(1, 0, 1, created=True), write(2, 2, 3, created=True)], "created=True", id="created-twice"),
        pytest.param([write(1, 0, 1)], "created=False", id="not-created-first"),
        pytest.param([write(1, 0, 1, created=True), write(2, 2, 3, mode="nx")], "committed over", id="nx-over-live"),
        pytest.param([write(1, 0, 1, created=True, mode="cas", expected=0)], "compare-and-set", id="cas-on-nothing"),
        pytest.param([write(1, 0, 1, created=True), delete(1, 2, 3), delete(1, 2, 4)], "twice", id="double-delete"),
        pytest.param([write(1, 0, 1, created=True), delete(3, 2, 3)], "never written", id="delete-of-nothing"),
        pytest.param(
            [write(1, 0, 1, created=True), delete(1, 5, 6), write(2, 2, 3, created=True)],
            "before the delete",
            id="write-before-its-delete",
        ),
        pytest.param(
            [write(1, 0, 1, created=True), Op("write", *K, 2, 3, vs(1), "t1b", "blind")],
            "already committed",
            id="duplicate-versionstamp",
        ),
        pytest.param([counter(1, 0, 0, 1, None), counter(2, 2, 2, 3, 1)], "counter wrote 2", id="counter-skip"),
    ],
)
def test_each_anomaly_is_reported(ops: list[Op], complaint: str) -> None:
    problems = check_history(ops)
    assert problems, "the checker missed the anomaly"
    assert any(complaint in problem for problem in problems), problems
