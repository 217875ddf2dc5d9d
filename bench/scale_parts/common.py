"""Shared by the scale bench parts: run one step in a fresh process and read back its figures and peak RSS.

A step is a module-level function `pkg.module:function` taking keyword arguments of JSON types and returning a dict
of JSON types. `child()` starts `python -c ...` in the repository root, calls it, and returns its dict plus
`wall_s` (the call alone, not the interpreter start) and `peak_rss_mb` (the child's own `ru_maxrss`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_RUNNER = """
import json, resource, sys, time, importlib
sys.path.insert(0, {repo!r})
mod, fn = {target!r}.split(":")
func = getattr(importlib.import_module(mod), fn)
start = time.perf_counter()
out = func(**json.loads({kwargs!r}))
out = dict(out or {{}})
out["wall_s"] = round(time.perf_counter() - start, 3)
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print("\\n" + json.dumps(out))
"""


def child(target: str, **kwargs) -> dict:
    """Run `target` ("pkg.module:function") with `kwargs` in a fresh Python; its dict + wall_s + peak_rss_mb."""
    code = _RUNNER.format(repo=str(REPO), target=target, kwargs=json.dumps(kwargs))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{target} failed in its child process: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> str:
    """The machine a figure was measured on, as BENCHMARKS.md records it."""
    return f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}"


def growth(per_row_small: float, per_row_large: float) -> float:
    """Per-row cost at the largest size over the smallest (goal <= 1.3 at 10x the rows)."""
    return round(per_row_large / per_row_small, 3) if per_row_small else float("nan")
