"""img2dataset prints per-shard and per-sample tracebacks (tens of thousands of lines when a disk fills): send its
console output, and its worker processes', to a log file, show our own progress bar, then summarise the log."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from tqdm import tqdm

# Messages in the log that name an environment problem, and how we say it.
CAUSES = {
    "No space left on device": "no space left on device",
    "Read-only file system": "read-only file system",
    "Permission denied": "permission denied",
    "Disk quota exceeded": "disk quota exceeded",
}


class ConsoleCapture:
    """Context manager: fds 1 and 2 go to a log file; a thread draws progress from the shards finished in `watch`."""

    def __init__(self, log_dir: Path | None, name: str, *, total: int, watch: Path, progress: bool = True) -> None:
        self.final_dir = Path(log_dir) if log_dir else None
        self.name, self.total, self.watch, self.progress = name, total, Path(watch), progress
        self.log_path: Path | None = None
        self.errors = 0
        self.cause: str | None = None
        self._stop = threading.Event()

    def __enter__(self) -> "ConsoleCapture":
        # Written outside OUT: if OUT's disk is full, img2dataset's own error prints must not fail too.
        scratch = Path(tempfile.gettempdir()) / "tessera-logs"
        scratch.mkdir(parents=True, exist_ok=True)
        self.log_path = scratch / f"ingest-{self.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        sys.stdout.flush()
        sys.stderr.flush()
        self._log = open(self.log_path, "ab")
        self._saved = (os.dup(1), os.dup(2))
        os.dup2(self._log.fileno(), 1)
        os.dup2(self._log.fileno(), 2)
        self._thread = threading.Thread(target=self._draw, daemon=True)
        self._thread.start()
        return self

    def _draw(self) -> None:
        with os.fdopen(os.dup(self._saved[1]), "w") as term:
            bar = tqdm(total=self.total, desc="download", unit="shard", file=term, disable=not self.progress)
            while True:
                stopping = self._stop.wait(0.5)
                done = sum(1 for _ in self.watch.glob("*_stats.json"))
                if done > bar.n:
                    bar.update(done - bar.n)
                if stopping:
                    break
            bar.close()

    def __exit__(self, *exc) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._log.close()
        self._stop.set()
        self._thread.join()
        self._summarise()

    def _summarise(self) -> None:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        self.errors = text.count("Traceback (most recent call last)")
        self.cause = next((said for needle, said in CAUSES.items() if needle in text), None)
        if self.final_dir is not None and text:
            target = self.final_dir / self.log_path.name
            try:
                self.final_dir.mkdir(parents=True, exist_ok=True)
                self.log_path = Path(shutil.move(str(self.log_path), target))
            except OSError:  # the disk may be the problem: the log stays in the temp folder
                target.unlink(missing_ok=True)
        elif not text:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None
