"""What a track (pairs, documents, video clips, molecules) declares so the CLI, stats, report and Dagster can iterate
every track instead of naming each one.

A track is one package under `pipelines/` with a `track.py` that builds one `Track`; the registry
(`pipelines/tracks.py`) lists those modules. Callables are `"module:attribute"` references resolved on first use,
so listing the tracks imports no model library and no track imports another.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping


def resolve(ref: str) -> Any:
    """The object a `"package.module:attribute"` reference names."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Track:
    """One modality's declaration: its sources, stages, presets, outcome views, stats/report sections and Dagster
    wiring. Fields ending in `_ref` (and the values of `refs`) are `"module:attribute"` strings."""

    name: str
    title: str
    sources: Mapping[str, str]  # `--source` name -> one line for --help
    stages: tuple[str, ...] = ()  # the track's stages in order, for docs and --help
    refs: Mapping[str, str] = field(default_factory=dict)

    def has(self, role: str) -> bool:
        """True when the track declares `role` (e.g. "ingest", "presets", "stats", "report", "dagster")."""
        return role in self.refs

    def get(self, role: str) -> Any:
        """The object the track declared for `role`; a KeyError names the track and the role."""
        try:
            return resolve(self.refs[role])
        except KeyError:
            raise KeyError(f"track {self.name!r} declares no {role!r}") from None
