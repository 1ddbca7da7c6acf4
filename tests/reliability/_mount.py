"""Tiny loop-mounted ext4 file systems for the disk-fault tests, unmounted afterwards whatever happens.

Mounting needs root, a loop device and mkfs.ext4; where any is missing the tests that use these skip,
saying which. 1 KiB blocks are the case that matters: SQLite extends its WAL index a 4 KiB page at a time
by writing one byte per page, which allocates one block of each page on such a file system.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

_WAIT: Final = 60.0  # seconds for mkfs, mount or umount to return


def unavailable() -> str | None:
    """Why a loop device cannot be mounted here, or None when it (probably) can."""
    if sys.platform != "linux":
        return "loop mounts need Linux"
    if os.geteuid() != 0:
        return "loop mounts need root"
    if not glob.glob("/dev/loop*"):
        return "no /dev/loop* device"
    missing = [tool for tool in ("mkfs.ext4", "mount", "umount") if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    return None


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=_WAIT, check=False)


@contextlib.contextmanager
def tiny_ext4(directory: Path, size_kib: int = 4096, block: int = 1024) -> Iterator[Path]:
    """An ext4 of ``size_kib`` KiB with ``block``-byte blocks, mounted at ``directory``/m; skips where the
    machine does not allow it."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    image = directory / "disk.img"
    mount = directory / "m"
    mount.mkdir()
    with image.open("wb") as file:
        file.truncate(size_kib * 1024)
    made = _run("mkfs.ext4", "-q", "-F", "-b", str(block), str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mounted = _run("mount", "-o", "loop", str(image), str(mount))
    if mounted.returncode != 0:
        pytest.skip(f"mount -o loop is not allowed here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        gone = _run("umount", str(mount))
        if gone.returncode != 0:  # something still holds it: detach lazily rather than leave it mounted
            _run("umount", "-l", str(mount))


def remount_read_only(mount: Path) -> None:
    """Make the mounted file system read-only (``tiny_ext4`` unmounts it as before)."""
    done = _run("mount", "-o", "remount,ro", str(mount))
    if done.returncode != 0:
        pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")
