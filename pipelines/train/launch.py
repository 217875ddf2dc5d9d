"""Command lines of the training jobs, shared by `tessera train` and the Dagster training-run assets.

nproc == 1 runs `python -m JOB`; nproc > 1 runs `torchrun --nproc_per_node N -m JOB` (add torchrun's
`--nnodes/--node_rank/--rdzv_endpoint` through `torchrun_args` for several machines).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.train.eva_clip import open_clip_args


def job_command(module: str, args: list[str], nproc: int = 1, torchrun_args: list[str] | None = None) -> list[str]:
    """`python -m module args` or its torchrun form."""
    if nproc <= 1 and not torchrun_args:
        return [sys.executable, "-m", module, *args]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", *(torchrun_args or []),
            "-m", module, *args]


EVA_CLIP_JOBS = {"clip": "pipelines.train.eva_clip", "a-infonce": "pipelines.train.eva_clip_a_infonce"}


def eva_clip_command(data_dir: Path, out: Path, model: str = "tessera-tiny-clip", epochs: int = 1,
                     batch_size: int = 8, lr: float = 5e-4, name: str = "run", nproc: int = 1,
                     extra: list[str] | None = None, torchrun_args: list[str] | None = None,
                     loss: str = "clip", loss_args: list[str] | None = None) -> list[str]:
    """The EVA-CLIP job over an export folder; logs and checkpoints go to `out/NAME`.

    `loss` "clip" is open_clip_train itself; "a-infonce" is Tessera's loop (one process) with `loss_args`.
    """
    args = open_clip_args(data_dir, out, model=model, epochs=epochs, batch_size=batch_size, lr=lr, name=name,
                          extra=[*(extra or []), *(loss_args or [])])
    return job_command(EVA_CLIP_JOBS[loss], args, nproc, torchrun_args)


def emu3_command(tokens: Path, out: Path, steps: int = 10, batch_size: int = 2, lr: float = 3e-3,
                 lm: str = "tiny", tokenizer: str = "tiny", nproc: int = 1, extra: list[str] | None = None,
                 torchrun_args: list[str] | None = None) -> list[str]:
    """The Emu3 next-token job over a token folder; the checkpoint goes to `out/checkpoint`."""
    args = [str(tokens), "--out", str(out), "--steps", str(steps), "--batch-size", str(batch_size), "--lr", str(lr),
            "--lm", lm, "--tokenizer", tokenizer, *(extra or [])]
    return job_command("pipelines.train.emu3", args, nproc, torchrun_args)
