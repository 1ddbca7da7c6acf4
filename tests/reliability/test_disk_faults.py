"""Disk faults on real file systems: a full disk (which must never kill the process), the space a small
disk holds, space freed while a store is open, a read-only mount, and a WAL deleted under an open store.

The stores on tiny disks run in children (``_disk_child.py``): a SIGBUS kills the child, and the test sees
its exit status. The mounts are loop-mounted ext4 images (``_mount.py``), skipped where that is not allowed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from kvstore import KVStore, ReadOnlyStoreError, StorageError

from ._mount import remount_read_only, tiny_ext4
from ._support import HERE, WAIT, child_env

pytestmark = pytest.mark.reliability

VALUE: Final = 3000  # bytes of each value the children write


def _child(mode: str, directory: Path) -> dict[str, Any]:
    """Run ``_disk_child.py MODE DIRECTORY``; its report. A child killed by a signal fails the test, naming it."""
    child = subprocess.run(
        [sys.executable, str(HERE / "_disk_child.py"), mode, str(directory)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=WAIT,
        check=False,
    )
    if child.returncode < 0:
        pytest.fail(f"{mode}: the child was killed by {signal.Signals(-child.returncode).name}; {child.stderr}")
    assert child.returncode == 0, child.stderr
    report: dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    return report


def test_a_store_left_in_its_wal_on_a_full_disk_opens_as_storage_full_not_sigbus(tmp_path: Path) -> None:
    """The whole store in its WAL on a full 1 KiB-block ext4: opening it used to die of SIGBUS in WAL recovery
    (the WAL index could not be mapped). It is a StorageFullError naming the -shm file until space is freed,
    then every acknowledged entry is there."""
    with tiny_ext4(tmp_path) as disk:
        filled = _child("fill-in-wal", disk)
        assert filled["acked"] > 0
        assert filled["wal_bytes"] > filled["acked"] * VALUE  # the store lives in its WAL
        refused = _child("open", disk)
        assert refused["open"] == "StorageFullError", refused
        assert "kv.db-shm" in refused["detail"]
        assert "bytes free" in refused["detail"]
        (disk / "ballast").unlink()
        opened = _child("open", disk)
        assert opened == {"open": "ok", "found": filled["acked"]}
        # Closing moved the WAL into the database file, which may fill the disk again: then kvstore says so,
        # and plain sqlite3 would die mapping the WAL index left behind.
        again = _child("open", disk)
        assert again["open"] in ("ok", "StorageFullError"), again


def test_a_small_disk_holds_its_data_and_deletes_work_when_it_is_full(tmp_path: Path) -> None:
    """Filled to the last byte, a 4 MiB disk holds at least a quarter of its size in values (it held 12%, the
    store in its WAL), and every delete of a full store works, freeing room that new writes take."""
    with tiny_ext4(tmp_path) as disk:
        report = _child("capacity", disk)
        assert report["filled"] * VALUE >= report["fs_bytes"] / 4, report
        assert report["delete_failures"] == 0, report
        assert report["refilled"] > 0, report
        assert report["readable"]
        assert _child("integrity", disk)["integrity"] == ["ok"]


def test_an_async_store_on_a_small_disk_deletes_when_full_and_reuses_the_room(tmp_path: Path) -> None:
    """AsyncKVStore's writes commit in write_batch transactions, which cannot run twice: a full disk fails
    the batch, relieves the disk for the next one, and deletes work as they do through KVStore."""
    with tiny_ext4(tmp_path) as disk:
        report = _child("async-capacity", disk)
        assert report["filled"] > 0
        assert report["delete_failures"] == 0, report
        assert report["refilled"] > 0, report
        assert _child("integrity", disk)["integrity"] == ["ok"]


def test_space_freed_beside_a_full_store_takes_new_writes_at_once(tmp_path: Path) -> None:
    """384 KiB freed beside a store that filled the disk: writes go on, using at least half of it, with the
    store open (a write that finds the disk full renews the page limit and checkpoints once); the store
    reopens with everything acknowledged."""
    with tiny_ext4(tmp_path) as disk:
        report = _child("freed", disk)
        assert report["before"] > 0
        assert report["after"] * VALUE >= report["freed"] / 2, report
        assert report["reopened"] is True, report
        assert _child("integrity", disk)["integrity"] == ["ok"]


def test_a_read_only_mount_serves_reads_and_refuses_writes_naming_the_mount(tmp_path: Path) -> None:
    """A store on a file system mounted read-only opens (immutable: nothing can change it there), reads, and
    refuses writes with ReadOnlyStoreError saying why; a store whose WAL a crash left behind still reads."""
    with tiny_ext4(tmp_path) as disk:
        clean, crashed = disk / "clean", disk / "crashed"
        clean.mkdir()
        crashed.mkdir()
        with KVStore(clean / "kv.db") as kv:
            kv.set("k", "v")
        assert _child("crash", crashed)["wal_bytes"] > 0
        before = {path: path.read_bytes() for path in disk.rglob("kv.db*")}
        remount_read_only(disk)
        with KVStore(clean / "kv.db") as kv:
            entry = kv.get("k")
            assert entry is not None
            assert entry.value == "v"
            with pytest.raises(ReadOnlyStoreError, match="mounted read-only") as caught:
                kv.set("k", "w")
            assert str(clean) in caught.value.detail
        report = _child("open", crashed)
        if report["open"] == "ok":
            assert report["found"] == 20
        else:  # the WAL holds commits that cannot be read without writing its index: said so
            assert report["open"] == "ReadOnlyStoreError", report
            assert "kv.db-wal" in report["detail"]
        with pytest.raises(ReadOnlyStoreError, match="cannot be created"):
            KVStore(disk / "new.db")
        assert {path: path.read_bytes() for path in disk.rglob("kv.db*")} == before


_SECOND_OPENER = """
import json, sys
from kvstore import KVError, KVStore
try:
    KVStore(sys.argv[1]).close()
    print(json.dumps(["ok", ""]))
except KVError as exc:
    print(json.dumps([type(exc).__name__, exc.detail]))
"""


def test_a_wal_deleted_under_an_open_store_is_named_to_the_next_opener(tmp_path: Path) -> None:
    """Deleting the -wal of an open store used to give the next opener a bare "disk I/O error"; it names the
    WAL and what happened, and the commits survive once the store that holds the deleted WAL closes."""
    path = tmp_path / "kv.db"
    kv = KVStore(path)
    try:
        for n in range(50):
            kv.set(f"k{n}", n)
        os.unlink(f"{path}-wal")
        child = subprocess.run(
            [sys.executable, "-c", _SECOND_OPENER, str(path)],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=WAIT,
            check=False,
        )
        assert child.returncode == 0, child.stderr
        name, detail = json.loads(child.stdout)
        assert name == StorageError.__name__, detail
        assert f"{path}-wal" in detail
        assert "deleted" in detail
        assert kv.set("after", 1).committed  # the store that holds the old WAL goes on
    finally:
        kv.close()
    with KVStore(path) as again:
        assert [again.get(f"k{n}") is not None for n in range(50)] == [True] * 50
        assert again.get("after") is not None
