"""EVA-CLIP-style contrastive training job: open_clip's own trainer on `tessera export-eva-clip` shards.

Run as `python -m pipelines.train.eva_clip [open_clip_train args]` (one process) or
`torchrun --nproc_per_node 8 -m pipelines.train.eva_clip ...` (open_clip reads torchrun's env; multi-node: add
`--nnodes N --node_rank R --rdzv_endpoint HOST:PORT`). It registers Tessera's model configs (`models/open_clip_configs`,
e.g. `tessera-tiny-clip`, `tessera-tiny-eva02-clip`) next to open_clip's own (`EVA02-L-14`, ...), runs
`open_clip_train.main`, and reports loss and samples/s (stdout JSON line; Dagster Pipes metadata when launched by it).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

from pipelines.export.folder import train_data
from pipelines.train.report import job_reporter, main_process

CONFIG_DIR = Path(__file__).resolve().parents[2] / "models" / "open_clip_configs"
_LINE = re.compile(r"Train Epoch: (\d+) .*?Batch \(t\): [\d.]+, ([\d.e+-]+)/s,.* Loss: ([\d.e+-]+)")


def open_clip_args(data_dir: Path, logs: Path, model: str = "tessera-tiny-clip", epochs: int = 1, batch_size: int = 8,
                   lr: float = 5e-4, name: str = "run", extra: list[str] | None = None) -> list[str]:
    """The argument list for `open_clip_train.main` over an export folder (every export in it, `::`-joined)."""
    spec, _ = train_data(data_dir)
    return [
        "--dataset-type", "webdataset", "--train-data", spec, "--model", model, "--epochs", str(epochs),
        "--batch-size", str(batch_size), "--lr", str(lr), "--warmup", "0", "--workers", "0",
        "--logs", str(logs), "--name", name, "--save-frequency", str(epochs), "--report-to", "",
        "--log-every-n-steps", "1", "--precision", "fp32", "--seed", "0", *(extra or []),
    ]


class _LossRecorder(logging.Handler):
    """Picks the loss and samples/s out of open_clip_train's `Train Epoch:` log lines."""

    def __init__(self, reporter) -> None:
        super().__init__(logging.INFO)
        self.reporter = reporter
        self.losses: list[float] = []
        self.rates: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = _LINE.search(record.getMessage())
        if m:
            self.rates.append(float(m.group(2)))
            self.losses.append(float(m.group(3)))
            self.reporter.log(f"step {len(self.losses)} epoch {m.group(1)} loss {self.losses[-1]:.4f}")


def main(argv: list[str] | None = None) -> int:
    """Run open_clip's trainer with Tessera's configs registered; report a summary."""
    import open_clip
    from open_clip_train.main import main as open_clip_main

    argv = list(sys.argv[1:] if argv is None else argv)
    open_clip.add_model_config(CONFIG_DIR)
    with job_reporter(main_process()) as reporter:
        recorder = _LossRecorder(reporter)
        logging.getLogger().addHandler(recorder)
        t0 = time.time()
        try:
            rc = open_clip_main(argv)
        finally:
            logging.getLogger().removeHandler(recorder)
        if rc == -1:  # open_clip's own early exits (e.g. an experiment of that name already exists)
            return 1
        rates = recorder.rates[1:] or recorder.rates  # the first step includes start-up
        reporter.finish({
            "job": "eva_clip", "steps": len(recorder.losses), "losses": recorder.losses,
            "first_loss": recorder.losses[0] if recorder.losses else None,
            "last_loss": recorder.losses[-1] if recorder.losses else None,
            "samples_per_s": sum(rates) / len(rates) if rates else None, "seconds": round(time.time() - t0, 2),
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
