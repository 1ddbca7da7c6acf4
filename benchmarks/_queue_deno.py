"""Deno KV's queue, when the ``deno`` package (PyPI's redistribution of the Deno binary) is installed.

A script runs in ``deno run --unstable-kv`` against a database file of its own and times inside Deno: one
throughput round (``kv.enqueue`` of N messages, each awaited, then ``kv.listenQueue`` until all N were
handled), or the latency run (messages enqueued at a steady rate, each timed from just before its enqueue
to its handler). Starting Deno is outside every timing. Deno KV has one listener per database in a process
(a second loses messages, deno#28772), so it has no 4-consumer figure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

SCRIPT: Final = """\
const [path, mode, count, rate] = [Deno.args[0], Deno.args[1], Number(Deno.args[2]), Number(Deno.args[3])];
const value = JSON.parse(Deno.args[4]);
const kv = await Deno.openKv(path);
let handled = 0;
let done: () => void = () => {};
const all = new Promise<void>((resolve) => { done = resolve; });
const sent: number[] = new Array(count).fill(0);
const delays: number[] = [];
// The round listens only once every message is enqueued: a listener running during the enqueues would
// handle most of them then, and the drain would time only the rest.
const listen = () => kv.listenQueue((message: { i: number }) => {
  if (mode === "latency") delays.push(performance.now() - sent[message.i]);
  handled += 1;
  if (handled === count) done();
});
let listening: Promise<void>;
if (mode === "round") {
  const begin = performance.now();
  for (let i = 0; i < count; i++) await kv.enqueue({ ...value, i }, { delay: 0 });
  const enqueued = performance.now();
  listening = listen();
  await all;
  const drained = performance.now();
  console.log(JSON.stringify({ enqueue_s: (enqueued - begin) / 1000, drain_s: (drained - enqueued) / 1000 }));
} else {
  listening = listen();
  const step = 1000 / rate;
  const begin = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = begin + i * step - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sent[i] = performance.now();
    await kv.enqueue({ ...value, i });
  }
  await all;
  console.log(JSON.stringify({ delays_ms: delays }));
}
kv.close();
await listening;
"""


def deno_binary() -> str | None:
    """The deno executable: the ``deno`` package's, else one on PATH."""
    try:
        import deno  # type: ignore[import-untyped]

        found: str = deno.find_deno_bin()
        return found
    except (ImportError, AttributeError, FileNotFoundError):
        return shutil.which("deno")


def unavailable() -> str | None:
    return None if deno_binary() is not None else "the deno package is not installed (pip install -e '.[bench]')"


def version() -> str | None:
    binary = deno_binary()
    if binary is None:
        return None
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.split("\n", 1)[0].removeprefix("deno ").split(" ", 1)[0] or None


def run_deno(directory: Path, mode: str, count: int, rate: float, value: dict[str, Any]) -> dict[str, Any]:
    """Run the script once (``mode``: "round" or "latency") and return what it printed."""
    binary = deno_binary()
    if binary is None:
        raise RuntimeError(unavailable())
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "queue_bench.ts"
    script.write_text(SCRIPT)
    database = directory / f"deno-{mode}.db"
    command = [binary, "run", "--unstable-kv", "--allow-read", "--allow-write", "--no-prompt", str(script),
               str(database), mode, str(count), str(rate), json.dumps(value)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=directory)
    if done.returncode != 0:
        raise RuntimeError(f"deno exited {done.returncode}: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
