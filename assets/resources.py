"""Dagster resources: where data lives and how the stages run. Assets stay the same everywhere; only these change."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource


class TesseraResource(ConfigurableResource):
    """Root folders and engine settings shared by every asset."""

    input_dir: str = "data/incoming"
    out_dir: str = "data/tessera"
    engine: str = "local"  # "local" or "ray"
    batch_size: int = 64
    num_actors: int = 1

    def path(self, *parts: str) -> Path:
        """A folder under `out_dir` (created on demand): `ingest`, `curate`, `captions`, `tokens`, `eva_clip`."""
        p = Path(self.out_dir).joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p
