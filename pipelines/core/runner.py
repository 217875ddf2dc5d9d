"""Run stages over pyarrow tables, either in a local loop or on Ray Data actor pools.

Both engines give the same rows in the same order; Ray starts locally unless `RAY_ADDRESS` names a cluster.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal, Sequence

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core.errors import TesseraEnvironmentError
from pipelines.core.stage import Stage

Engine = Literal["local", "ray"]


class RunnerConfig(BaseModel):
    """How batches are executed."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    engine: Engine = "local"
    batch_size: int = Field(64, ge=1)
    num_actors: int = Field(1, ge=1)
    num_gpus_per_actor: float | None = None  # None: 1 when CUDA is present, else 0


def cuda_available() -> bool:
    """True when torch sees a CUDA device (imported lazily: torch is heavy)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _local_run(stages: Sequence[Stage], table: pa.Table, batch_size: int) -> pa.Table:
    outputs = []
    for offset in range(0, max(table.num_rows, 1), batch_size):
        batch = table.slice(offset, batch_size)
        for stage in stages:
            batch = stage(batch)
        outputs.append(batch)
    return pa.concat_tables(outputs, promote_options="default") if outputs else table


def _local_ray() -> bool:
    """True when Ray runs on a cluster this process started (no RAY_ADDRESS): all its CPUs are ours."""
    return not os.environ.get("RAY_ADDRESS")


def ensure_ray() -> None:
    """Start (or join, via RAY_ADDRESS) Ray once, with its temp files in a folder of our own."""
    import ray

    if ray.is_initialized():
        return
    if not _local_ray():
        address = os.environ["RAY_ADDRESS"]
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as err:
            raise TesseraEnvironmentError(
                f"cannot join the Ray cluster RAY_ADDRESS={address}: {_first_line(err)}; start it, or unset "
                "RAY_ADDRESS to run Ray on this machine (a cluster with token authentication, the default of "
                "`ray start` in Ray 2.60, also needs RAY_AUTH_MODE=token and its token)") from None
        return
    tmp = Path(os.environ.get("RAY_TMPDIR", Path.cwd() / ".cache" / "ray"))
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_TMPDIR", str(tmp))
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, _temp_dir=str(tmp))


def _wait_for_free_cpus(timeout: float = 5.0) -> None:
    """Wait until the CPUs held by a finished run's actor pools are back (local cluster only).

    Ray kills the pools' actors asynchronously after a dataset finishes; a run started meanwhile (the next shard) would
    see no free CPU, and Ray Data would warn that the job "will hang", and wait for the old actors to go anyway."""
    import ray

    deadline = time.monotonic() + timeout
    total = ray.cluster_resources().get("CPU", 0)
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.02)


def _ray_run(stages: Sequence[Stage], table: pa.Table, cfg: RunnerConfig) -> pa.Table:
    import ray
    from ray.data import ActorPoolStrategy

    ensure_ray()
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    gpus = cfg.num_gpus_per_actor if cfg.num_gpus_per_actor is not None else (1.0 if cuda_available() else 0.0)
    # Several blocks, so that every actor of the pool gets work. `from_blocks` reads their sizes here; `from_arrow`
    # would start one task per block to do it, holding every CPU of a small machine just as the run begins.
    n_blocks = max(1, min(cfg.num_actors * 4, -(-table.num_rows // cfg.batch_size)))
    step = -(-table.num_rows // n_blocks)
    ds = ray.data.from_blocks([table.slice(i, step) for i in range(0, table.num_rows, step)])
    for stage in stages:
        ds = ds.map_batches(
            type(stage),
            fn_constructor_kwargs={"config": stage.config},
            batch_format="pyarrow",
            batch_size=cfg.batch_size,
            compute=ActorPoolStrategy(size=cfg.num_actors),
            num_gpus=gpus,
            zero_copy_batch=True,
        )
    try:
        blocks = [ray.get(ref) for ref in ds.to_arrow_refs()]
    except _cluster_failures() as err:
        where = os.environ.get("RAY_ADDRESS") or "this machine"
        raise TesseraEnvironmentError(
            f"the Ray cluster ({where}) lost a node, worker or object while running {_names(stages)}: "
            f"{type(err).__name__}: {_first_line(err)}; finished units are kept, rerun the same command to resume"
        ) from None
    if _local_ray():
        _wait_for_free_cpus()
    return pa.concat_tables(blocks, promote_options="default") if blocks else table.slice(0, 0)


def _cluster_failures() -> tuple[type[BaseException], ...]:
    """Ray's errors for lost machines and processes (not errors raised by a stage's own code)."""
    from ray import exceptions as rx

    return (rx.RayActorError, rx.ObjectLostError, rx.NodeDiedError, rx.WorkerCrashedError, rx.LocalRayletDiedError,
            rx.RaySystemError)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:300]


def _names(stages: Sequence[Stage]) -> str:
    return ", ".join(type(s).__name__ for s in stages)


def _refuse_split_whole_pool(stages: Sequence[Stage], table: pa.Table, cfg: RunnerConfig) -> None:
    """Stop before a whole-pool stage would see only part of the table: several batches, or Ray's map_batches."""
    whole = [type(s).__name__ for s in stages if s.whole_pool]
    if not whole or table.num_rows == 0:
        return
    if cfg.engine == "ray":
        how = "under Ray map_batches"
    elif table.num_rows > cfg.batch_size:
        how = f"in batches of {cfg.batch_size}"
    else:
        return
    raise ValueError(f"{', '.join(whole)} must see the whole table at once and cannot run {how} over "
                     f"{table.num_rows} rows; call it on the whole table (as curate's selection does)")


class StageRunner:
    """Executes a chain of stages over a table with the configured engine."""

    def __init__(self, config: RunnerConfig | None = None, **overrides) -> None:
        base = config.model_dump() if config else {}
        self.config = RunnerConfig(**{**base, **overrides})

    def run(self, stages: Stage | Sequence[Stage], table: pa.Table) -> pa.Table:
        """Apply `stages` in order to every batch of `table` and return the concatenated result."""
        stages = [stages] if isinstance(stages, Stage) else list(stages)
        _refuse_split_whole_pool(stages, table, self.config)
        if table.num_rows == 0:
            return _local_run(stages, table, self.config.batch_size)
        if self.config.engine == "ray":
            return _ray_run(stages, table, self.config)
        return _local_run(stages, table, self.config.batch_size)
