"""The collector held off while a large value is built (``kvstore._gcpause``): restored exactly, on every exit,
counted across threads, and the value built aged into the oldest generation; large values through the pieces
come back equal, with the collector as it was."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from kvstore import NotADatabaseError, _codec, _gcpause, _pieces

_OPTIONS: dict[str, Any] = {"raw": False, "strict_map_key": True, "max_ext_len": 0}


@pytest.fixture(autouse=True)
def collector_kept() -> Iterator[None]:
    """Whatever a test does, the collector is left as it was found, and nothing frozen."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def in_oldest_generation(target: object) -> bool:
    return any(found is target for found in gc.get_objects(generation=2))


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_while_building_and_as_it_was_after(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    with _gcpause.building():
        assert not gc.isenabled()
    assert gc.isenabled() is enabled


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_restored_when_the_build_fails(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    with pytest.raises(ZeroDivisionError), _gcpause.building():
        _ = 1 / 0
    assert gc.isenabled() is enabled


def test_the_last_build_to_end_turns_the_collector_back_on() -> None:
    gc.enable()
    inside, leave = threading.Event(), threading.Event()

    def other_build() -> None:
        with _gcpause.building():
            inside.set()
            leave.wait()

    thread = threading.Thread(target=other_build)
    thread.start()
    try:
        assert inside.wait(30)
        with _gcpause.building():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the other thread still builds
    finally:
        leave.set()
        thread.join()
    assert gc.isenabled()


def test_what_was_built_is_aged_into_the_oldest_generation() -> None:
    gc.enable()
    with _gcpause.building():
        built = [[index] for index in range(100)]
    assert in_oldest_generation(built)
    assert all(in_oldest_generation(member) for member in built)


def test_objects_the_program_froze_stay_frozen() -> None:
    gc.enable()
    kept = [[index] for index in range(10)]
    gc.freeze()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    with _gcpause.building():
        built = [[1], [2]]
    assert gc.get_freeze_count() == frozen  # not unfrozen by the build
    assert not in_oldest_generation(kept[0])  # still in the permanent generation
    assert built == [[1], [2]]


_LARGE_BYTES = 32


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large from a few members and bytes on, so that ordinary values take the held-off path."""
    monkeypatch.setattr(_pieces, "PIECE_MEMBERS", 3)
    monkeypatch.setattr(_codec, "PIECE_MEMBERS", 3)
    monkeypatch.setattr(_pieces, "PIECE_BYTES", 5)
    monkeypatch.setattr(_codec, "_PIECEWISE_FROM", 16)
    monkeypatch.setattr(_pieces, "LARGE_BYTES", _LARGE_BYTES)
    monkeypatch.setattr(_pieces, "LARGE_MEMBERS", 8)


@pytest.mark.usefixtures("small_thresholds")
@pytest.mark.parametrize(
    "value",
    [
        list(range(200)),
        {f"k{index}": [index, "x" * index, None] for index in range(50)},
        {"items": [{"n": index, "tags": ["a", "b"]} for index in range(40)], "total": 40},
        [b"\x00" * 40, [1.5] * 30, {"deep": [[[index]] for index in range(20)]}],
    ],
)
def test_large_values_round_trip_with_the_collector_as_it_was(value: Any) -> None:
    gc.enable()
    data = _codec.encode_value(value, 1 << 20)
    assert gc.isenabled()
    assert data == msgpack.packb(value, use_bin_type=True, strict_types=True)
    assert len(data) >= _LARGE_BYTES  # the held-off path was taken both ways
    decoded = _codec.decode_value(data)
    assert gc.isenabled()
    assert decoded == value
    assert in_oldest_generation(decoded)


@pytest.mark.usefixtures("small_thresholds")
def test_corrupt_large_data_restores_the_collector() -> None:
    gc.enable()
    data = msgpack.packb(list(range(100)), use_bin_type=True)
    with pytest.raises(NotADatabaseError):
        _codec.decode_value(data[:-5])  # ends before the value does
    assert gc.isenabled()
    with pytest.raises(ValueError, match=r"exceeds|ends before"):  # msgpack refuses it, or the pieces do
        _pieces.unpack(data[:-5], **_OPTIONS)
    assert gc.isenabled()
