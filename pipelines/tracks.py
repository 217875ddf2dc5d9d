"""The track registry: every modality Tessera curates, in the order the CLI, stats, report and Dagster show them.

Adding a track is one package with a `track.py` (see `pipelines.core.track`) plus one line here.
"""

from __future__ import annotations

import importlib

from pipelines.core.track import Track

TRACK_MODULES = (
    "pipelines.pairs.track",
    "pipelines.documents.track",
    "pipelines.video.track",
    "pipelines.molecules.track",
)


def tracks() -> tuple[Track, ...]:
    """Every registered track, in registry order."""
    return tuple(importlib.import_module(m).TRACK for m in TRACK_MODULES)


def track(name: str) -> Track:
    """The track called `name`."""
    found = {t.name: t for t in tracks()}
    if name not in found:
        raise KeyError(f"no track {name!r} (tracks: {', '.join(found)})")
    return found[name]


def track_of_source(source: str) -> Track:
    """The track that reads `--source source`; a KeyError lists every source."""
    for t in tracks():
        if source in t.sources:
            return t
    raise KeyError(f"unknown source {source!r} (sources: {', '.join(all_sources())})")


def all_sources() -> list[str]:
    """Every `--source` name of every track, in registry order."""
    return [s for t in tracks() for s in t.sources]
