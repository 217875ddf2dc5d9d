"""Where locally built model checkpoints (the tiny test/demo instances) are kept."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """`$TESSERA_CACHE` (default `~/.cache/tessera`) joined with `parts`, created on demand."""
    root = Path(os.environ.get("TESSERA_CACHE", Path.home() / ".cache" / "tessera"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
