"""Commands a track adds of its own (its `commands` role), e.g. `tessera mol ingest`, the molecule track's alias of
`tessera ingest --source molecules`."""

from __future__ import annotations

import argparse

from pipelines.tracks import tracks


def register(sub: argparse._SubParsersAction) -> None:
    """Let every track that declares `commands` add its subcommands."""
    for t in tracks():
        if t.has("commands"):
            t.get("commands")(sub)
