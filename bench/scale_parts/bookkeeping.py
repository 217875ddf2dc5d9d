"""Shard-job bookkeeping per unit: is the cost of committing a unit flat in the number of units in the folder?

Each size runs in its own process on a fresh folder: one `pending()` over every unit (the run's one sweep), then a
real `ShardJob.unit()` + `UnitWriter.commit()` per unit of one tiny file (verified, renamed, marker, index line),
then `finished()` once, then `pending()` again as a rerun finds it (everything finished), then a rerun after a crash:
every 10th unit lost its marker and left a temporary copy, so `pending()` reads every marker and its one sweep lists
the full folder and removes those copies. Goal: per-unit cost at
10x the units <= 1.3x.
"""

from __future__ import annotations

import time
from pathlib import Path

MARKER_DIR = "parts"


def measure(root: str, units: int) -> dict:
    """Commit `units` tiny units into a fresh job under `root`; seconds per phase."""
    from pipelines.core.shard_io import TMP_PREFIX
    from pipelines.core.shard_job import ShardJob

    job = ShardJob(Path(root), MARKER_DIR)
    names = [f"{i:07d}" for i in range(units)]
    start = time.perf_counter()
    todo = job.pending(names)
    pending_s = time.perf_counter() - start
    start = time.perf_counter()
    for name in todo:
        rel = f"{MARKER_DIR}/{name}.txt"
        with job.unit(name) as writer:
            writer.path(rel).write_bytes(name.encode())
            writer.commit({"successes": 1})
    commit_s = time.perf_counter() - start
    start = time.perf_counter()
    found = job.finished()
    finished_s = time.perf_counter() - start
    start = time.perf_counter()
    left = job.pending(names)
    rerun_s = time.perf_counter() - start
    if len(found) != units or left:
        raise RuntimeError(f"{len(found)} of {units} units finished, {len(left)} still pending")
    crashed = names[::10]
    for name in crashed:
        job.marker_path(name).unlink()
        (Path(root) / MARKER_DIR / f"{TMP_PREFIX}{name}.txt.w").write_bytes(b"half")
    start = time.perf_counter()
    todo = job.pending(names)
    sweep_s = time.perf_counter() - start
    leftovers = len(list((Path(root) / MARKER_DIR).glob(f"{TMP_PREFIX}*")))
    if todo != crashed or leftovers:
        raise RuntimeError(f"crash rerun: {len(todo)} pending of {len(crashed)} crashed, {leftovers} copies left")
    return {"pending_s": pending_s, "commit_s": commit_s, "finished_s": finished_s, "rerun_pending_s": rerun_s,
            "crash_rerun_pending_s": sweep_s}


def run(quick: bool, work: Path) -> dict:
    """Measure each size in a child process; figures: per-unit ms per phase, growth of the total, goal."""
    from bench.scale_parts.common import child, growth

    sizes = [200, 1_000] if quick else [1_000, 10_000]
    figures: dict = {"sizes": sizes}
    per_unit = []
    for units in sizes:
        got = child("bench.scale_parts.bookkeeping:measure", root=str(work / f"{units}"), units=units)
        total = got["pending_s"] + got["commit_s"] + got["finished_s"] + got["crash_rerun_pending_s"]
        per_unit.append(total / units)
        ms = {k.replace("_s", "_ms_per_unit"): round(got[k] * 1e3 / units, 4)
              for k in ("pending_s", "commit_s", "finished_s", "rerun_pending_s", "crash_rerun_pending_s")}
        figures[f"units_{units}"] = {**ms, "ms_per_unit": round(per_unit[-1] * 1e3, 4), "wall_s": got["wall_s"],
                                     "peak_rss_mb": got["peak_rss_mb"]}
        print(f"bookkeeping {units:>7,} units: {per_unit[-1] * 1e3:.3f} ms/unit (commit "
              f"{ms['commit_ms_per_unit']:.3f}, finished() {ms['finished_ms_per_unit']:.4f}, sweep "
              f"{ms['pending_ms_per_unit']:.4f}, rerun pending {ms['rerun_pending_ms_per_unit']:.4f}, crash rerun "
              f"{ms['crash_rerun_pending_ms_per_unit']:.4f}), peak RSS "
              f"{got['peak_rss_mb']:.0f} MB", flush=True)
    figures["growth"] = growth(per_unit[0], per_unit[-1])
    figures["growth_goal"] = 1.3
    figures["goal_met"] = None if quick else figures["growth"] <= 1.3  # quick sizes judge no goal
    print(f"bookkeeping growth {figures['growth']} per unit at {sizes[-1] // sizes[0]}x the units (goal <= 1.3)",
          flush=True)
    return figures
