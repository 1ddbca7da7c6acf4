"""Fixtures of the reliability suite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from kvstore import KVStore

from ._hostile import NOW, Target


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A file store with a fixed clock and a few entries of every kind, in three namespaces."""
    path = tmp_path_factory.mktemp("hostile") / "kv.db"
    with KVStore(path, clock=lambda: NOW, auto_purge_every=0) as kv:
        for name in ("default", "ns-1", "ns_2"):
            space = kv.namespace(name)
            space.set("k/a", {"n": 1}, metadata={"m": "x"})
            space.set("k/b", b"bytes", expire_in=60_000, refresh_on_access=True)
            space.set("k/_", "text", content_type="text/x-thing")
            space.set("k_", 1)
            space.set("kx", 2)  # "k_" must never match it as a LIKE pattern would
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            yield Target(kv, conn)
        finally:
            conn.close()
