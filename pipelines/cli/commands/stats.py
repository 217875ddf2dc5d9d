"""`tessera stats`: readable tables (or one JSON object) computed by DuckDB over an output folder's files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.core.errors import TesseraUserError
from pipelines.stats.plot import plot_ingest_stats
from pipelines.tracks import tracks
from pipelines.folders import folder_stats, render_folder_stats
from pipelines.stats.report import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="tables of counts by outcome and reason, accounting, shards and sizes of any track's output folder",
        description=(
            "Run the queries in sql/ with DuckDB directly over OUT's sidecar parquet and stats JSON (no copy) and "
            "print readable tables for every track OUT holds (" + ", ".join(t.name for t in tracks()) + "). With --json print "
            "one JSON object with the same top level for every track: folder; tracks (the tracks OUT holds); "
            "input_rows, success, failed, rejected and shards (of the first of those tracks); accounting (holds, and "
            "levels: one row per track and level with expected, accounted, missing, duplicated, duplicate_keys); "
            "then one section per track, named after it."
        ),
    )
    p.add_argument("out", type=Path, metavar="OUT", help="a folder written by `tessera ingest` or `tessera curate`")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--plot", type=Path, metavar="PNG", help="also draw outcomes, image sizes and shards into PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stats = folder_stats(args.out)
    if args.json:
        print_json(stats)
    else:
        render_folder_stats(stats)
    if args.plot:
        if "outcomes" not in stats.get("pairs", {}):
            raise TesseraUserError("--plot draws ingest folders only (OUT written by `tessera ingest`)")
        print(f"plot: {plot_ingest_stats(stats['pairs'], args.plot)}", file=sys.stderr)
    return 0
