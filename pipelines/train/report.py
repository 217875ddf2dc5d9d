"""How training jobs report: progress lines, a final JSON line, and Dagster Pipes metadata when launched by Dagster.

Only the `dagster_pipes` client (a small, dependency-free package meant for external processes) is used, and only
when Dagster launched the process (`DAGSTER_PIPES_CONTEXT` set); plain runs and torchrun never touch it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Iterator


class JobReporter:
    """Collects step metrics; `log()` prints progress, `finish()` reports the summary."""

    def __init__(self, pipes=None, is_master: bool = True) -> None:
        self.pipes = pipes
        self.is_master = is_master

    def log(self, message: str) -> None:
        """One progress line (also to Dagster's log under Pipes)."""
        if not self.is_master:
            return
        print(message, flush=True)
        if self.pipes is not None:
            self.pipes.log.info(message)

    def finish(self, metrics: dict) -> None:
        """Print the metrics as the last JSON line and report them as materialization metadata under Pipes."""
        if not self.is_master:
            return
        print(json.dumps(metrics, sort_keys=True), flush=True)
        if self.pipes is not None:
            self.pipes.report_asset_materialization(metadata=_pipes_metadata(metrics))


def _pipes_metadata(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, (int, float, str, bool)):
            out[k] = v
        else:
            out[k] = {"raw_value": v, "type": "json"}
    return out


@contextlib.contextmanager
def job_reporter(is_master: bool = True) -> Iterator[JobReporter]:
    """A reporter bound to Dagster Pipes when the process was launched through it, else to stdout only."""
    if is_master and os.environ.get("DAGSTER_PIPES_CONTEXT"):
        from dagster_pipes import open_dagster_pipes

        with open_dagster_pipes() as pipes:
            yield JobReporter(pipes)
    else:
        yield JobReporter(None, is_master)


def main_process() -> bool:
    """True on rank 0 (or when not distributed)."""
    return int(os.environ.get("RANK", "0")) == 0


def fail(message: str) -> int:
    """Print a one-line error for a job's bad input and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return 2
