"""`tessera ingest --source NAME`: one partition of input files into shards, with an outcome for every input record.

The sources, their options and their ingest commands come from the track registry (`pipelines.tracks`): each track
declares its `sources`, an `ingest_options` role (adds its argument group) and an `ingest_cli` role (runs it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.core.errors import TesseraUserError
from pipelines.tracks import all_sources, track_of_source, tracks


def _source_help() -> str:
    return "; ".join(f"{name}: {text}" for t in tracks() for name, text in t.sources.items())


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ingest` subcommand with every track's sources and options."""
    p = sub.add_parser(
        "ingest",
        help="input files -> shards + an outcome for every input record (" + ", ".join(
            t.title.lower() for t in tracks()) + ")",
        description=(
            "Read the input files of one --source as one partition of OUT: invalid or duplicate records are "
            "rejected with a reason, the rest fetched and written into shards, each with its stats file as a "
            "completion marker. Rerunning the same command resumes: finished shards are skipped and no record "
            "is written twice. Ingesting more files into the same OUT adds a partition whose records already seen "
            "count as duplicates. Each track's own options are in its group below."
        ),
    )
    p.add_argument("--source", required=True, choices=all_sources(),
                   help="schema of the input files: " + _source_help())
    p.add_argument("--metadata", required=True, nargs="+", type=Path, metavar="PATH",
                   help="input file(s) in the format of --source (see --source)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--partition", help="partition name (default: derived from the file names)")
    p.add_argument("--quiet", action="store_true", help="print only the final one-line summary")
    p.add_argument(
        "--prepare-only", action="store_true",
        help="validate, dedup URLs against this and earlier partitions, write the rejects ledger and the partition "
             "manifest, print what would be downloaded (rows, accepted, rejected by reason, shards planned) and "
             "stop before any download; the same command without it later downloads what was prepared "
             "(image-text pair sources only)",
    )
    p.add_argument(
        "--wait", action="store_true",
        help="if another run is writing the same partition, wait for it (default: stop with a message naming it)",
    )
    added = set()
    for t in tracks():
        if t.has("ingest_options") and t.refs["ingest_options"] not in added:
            added.add(t.refs["ingest_options"])
            t.get("ingest_options")(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Hand the arguments to the ingest command of the track that reads `--source`."""
    track = track_of_source(args.source)
    if args.prepare_only and track.name != "pairs":
        raise TesseraUserError(f"--prepare-only: the {track.title.lower()} track (--source {args.source}) has no "
                               "separate prepare step yet; it is supported for image-text pair sources only")
    return int(track.get("ingest_cli")(args) or 0)
