"""The PNG chart: time per item of every peer on every scenario, the targets, and RSS while listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _peers import LABELS, NAMES

COLORS = {
    "kvstore": "#1f77b4",
    "raw": "#7f7f7f",
    "diskcache": "#ff7f0e",
    "sqlitedict": "#2ca02c",
    "redis": "#d62728",
}


def write_chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(14, 11), layout="constrained")
    grid = figure.add_gridspec(2, 2, height_ratios=(1.2, 1))
    bars, targets, memory = (
        figure.add_subplot(grid[0, :]),
        figure.add_subplot(grid[1, 0]),
        figure.add_subplot(grid[1, 1]),
    )
    machine = data["machine"]
    figure.suptitle(
        f"kvstore benchmark ({data['mode']} run): {machine['cpu']}, {machine['cores']} cores,"
        f" {machine['python']}, SQLite {machine['sqlite']}"
    )

    scenarios = data.get("scenarios", {})
    peers = [name for name in NAMES if any(name in s["results"] for s in scenarios.values())]
    width = 0.8 / max(1, len(peers))
    for offset, peer in enumerate(peers):
        xs, ys = [], []
        for index, scenario in enumerate(scenarios.values()):
            result = scenario["results"].get(peer)
            if result is not None:
                xs.append(index + (offset - (len(peers) - 1) / 2) * width)
                ys.append(result["primary_us"] / scenario["items_per_call"])
        bars.bar(xs, ys, width, label=LABELS[peer], color=COLORS[peer])
    bars.set_yscale("log")
    bars.set_xticks(range(len(scenarios)), [s["title"] for s in scenarios.values()], rotation=20, ha="right")
    bars.set_ylabel("µs per item, median (log scale; lower is faster)")
    bars.legend(ncols=len(peers), loc="upper left")
    bars.grid(axis="y", which="both", alpha=0.3)

    judged = [t for t in data.get("targets", []) if t["value"] is not None]
    labels, scores, colors = [], [], []
    for target in judged:
        value, limit = target["value"], target["limit"]
        # Normalised so that 1.0 is the limit and below 1.0 passes, whichever way the target points.
        score = (limit / value if value else float("inf")) if target["comparison"] in (">=", ">") else value / limit
        labels.append(target["id"])
        scores.append(min(score, 10.0))
        colors.append("#2ca02c" if target["pass"] else "#d62728")
    targets.barh(labels, scores, color=colors)
    targets.axvline(1.0, color="black", linewidth=1)
    targets.invert_yaxis()
    targets.set_xlim(0, max([2.0, *scores]) * 1.05)
    targets.set_xlabel("measured ÷ limit (≤ 1 passes; capped at 10)")
    targets.set_title("Targets of issue 4 (green: pass, red: fail)")

    rss = data.get("rss")
    if rss:
        xs = [point[0] for point in rss["curve"]]
        ys = [point[1] for point in rss["curve"]]
        memory.plot(xs, ys, color=COLORS["kvstore"], label="RSS")
        memory.axhspan(rss["baseline_mib"], rss["baseline_mib"] * 1.1, color="#2ca02c", alpha=0.15, label="+10%")
        memory.set_ylim(0, max(ys) * 1.3)
        memory.legend(loc="lower left")
        pages = memory.twinx()
        pages.plot(xs, [point[2] for point in rss["curve"]], color="#9467bd", linewidth=0.8)
        pages.set_ylabel("ms per page (purple)")
        pages.set_ylim(bottom=0)
    else:
        memory.text(0.5, 0.5, "not run", ha="center", va="center", transform=memory.transAxes)
    memory.set_xlabel("entries listed")
    memory.set_ylabel("RSS (MiB)")
    memory.set_title("Listing the big store page by page: RSS and time per page")
    figure.savefig(path, dpi=100)
    plt.close(figure)
