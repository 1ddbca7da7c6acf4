"""Message ids (ULID strings) and lease tokens: valid, unique, increasing, and fresh in a forked child."""

from __future__ import annotations

import os
import threading
import time

from ulid import ULID

from kvstore._ids import lease_token, message_id


def test_a_message_id_is_a_ulid_of_now() -> None:
    before = time.time_ns() // 1_000_000
    made = message_id()
    after = time.time_ns() // 1_000_000
    parsed = ULID.from_str(made)
    assert str(parsed) == made
    assert before <= parsed.milliseconds <= after


def test_ids_of_one_thread_increase_and_ids_of_many_threads_are_unique() -> None:
    ours = [message_id() for _ in range(5_000)]
    assert ours == sorted(ours)
    assert len(set(ours)) == len(ours)
    made: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(len(made))

    def make(into: list[str]) -> None:
        start.wait()
        into.extend(message_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [made_id for part in made for made_id in part]
    assert all(part == sorted(part) for part in made)
    assert len(set(every) | set(ours)) == len(every) + len(ours)


def test_lease_tokens_are_unique_hex_of_32_digits() -> None:
    tokens = [lease_token() for _ in range(5_000)]
    assert len(set(tokens)) == len(tokens)
    assert all(len(token) == 32 and int(token, 16) >= 0 for token in tokens)


def test_a_forked_child_makes_ids_and_tokens_its_parent_does_not() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it makes, then leave without running the parent's cleanup
        try:
            os.write(write, f"{message_id()} {lease_token()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    child_id, child_token = os.read(read, 200).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    parent_ids = {message_id() for _ in range(100)}
    parent_tokens = {lease_token() for _ in range(100)}
    assert child_id not in parent_ids
    assert child_token not in parent_tokens
    # The child drew its own random bits: its id's last 16 digits are not the parent's next ones.
    assert child_id[10:18] != message_id()[10:18]
    assert child_token[:16] != lease_token()[:16]
