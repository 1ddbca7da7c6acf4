"""The stores being compared: one ``Peer`` per library, built by name, each with one database of its own.

A peer hands out one ``Op`` per scenario: a closure that performs one call (get, set, a batch ...) for a
call index. Setup a scenario needs (reading current versions, say) happens when the op is built, outside
the timing. A peer raises ``Unsupported`` for a scenario its library has no equivalent of.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Final

from _config import Workload
from _timing import Op

NAMES: Final = ("kvstore", "raw", "diskcache", "sqlitedict", "redis")
LABELS: Final = {
    "kvstore": "kvstore",
    "raw": "raw sqlite3",
    "diskcache": "diskcache",
    "sqlitedict": "sqlitedict",
    "redis": "Redis (redis-py)",
}


class Unsupported(Exception):
    """The peer's library has no equivalent of this scenario; the message says why."""


class Failed(AssertionError):
    """A measured call did not do what it should have (a miss on a hit, a refused write ...)."""


class Peer:
    """One store under test. Every scenario method returns the op that runs one call of it."""

    name = "peer"

    def load(self, keys: list[str], value: object) -> None:
        """Write ``value`` at every key, in bulk (not measured)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def get_hit(self, w: Workload) -> Op:
        raise Unsupported("no get")

    def get_miss(self, w: Workload) -> Op:
        raise Unsupported("no get")

    def set(self, w: Workload) -> Op:
        raise Unsupported("no set")

    def set_tx_floor(self, w: Workload) -> Op:
        raise Unsupported("only raw sqlite3 runs kvstore's set statements by hand")

    def set_ttl_meta(self, w: Workload) -> Op:
        raise Unsupported("no per-entry TTL")

    def cas(self, w: Workload) -> Op:
        raise Unsupported("no conditional write")

    def if_not_exists(self, w: Workload) -> Op:
        raise Unsupported("no atomic insert-if-absent")

    def list_100(self, w: Workload) -> Op:
        raise Unsupported("no ordered range read")

    def get_many_100(self, w: Workload) -> Op:
        raise Unsupported("no get")

    def batch_1000(self, w: Workload) -> Op:
        raise Unsupported("no transaction")


def make_peer(name: str, location: str, prefix: str) -> Peer:
    """Open peer ``name`` on ``location`` (a file, a directory, or host:port for Redis)."""
    if name == "kvstore":
        from _peers_sqlite import KVStorePeer

        return KVStorePeer(location)
    if name == "raw":
        from _peers_sqlite import RawPeer

        return RawPeer(location)
    if name == "diskcache":
        from _peers_other import DiskcachePeer

        return DiskcachePeer(location)
    if name == "sqlitedict":
        from _peers_other import SqlitedictPeer

        return SqlitedictPeer(location)
    if name == "redis":
        from _peers_other import RedisPeer

        return RedisPeer(location, prefix)
    raise ValueError(f"unknown peer {name!r}")


def location(name: str, directory: Path, redis_address: str) -> str:
    """Where peer ``name`` keeps its data under ``directory``."""
    if name == "redis":
        return redis_address
    if name == "diskcache":
        return str(directory / "diskcache")
    return str(directory / f"{name}.db")


def unavailable(name: str, redis_address: str | None) -> str | None:
    """Why peer ``name`` cannot run here (a missing package, no Redis answering), or None."""
    module = {"diskcache": "diskcache", "sqlitedict": "sqlitedict", "redis": "redis"}.get(name)
    if module is not None:
        try:
            __import__(module)
        except ImportError:
            return f"the {module} package is not installed (pip install -e '.[bench]')"
    if name == "redis":
        if redis_address is None:
            return "skipped with --no-redis"
        host, _, port = redis_address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                if not sock.recv(64).startswith(b"+PONG"):
                    return f"the server on {redis_address} did not answer PING"
        except OSError as exc:
            return f"no Redis answered on {redis_address} ({exc.strerror or exc})"
    return None
