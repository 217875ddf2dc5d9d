"""`tessera report OUT [--out report.html]`: one self-contained HTML page with the tables and plots of every stage
found in OUT (the same ones the Dagster asset pages show)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""
    p = sub.add_parser(
        "report",
        help="one self-contained HTML page of tables and plots for an output folder",
        description=(
            "Write the tables and plots of each stage found in OUT (ingest outcomes and failures, curation drops "
            "and CLIP scores, caption statuses and lengths, Emu3 tokens per image) as ONE HTML file with the images "
            "inlined. OUT is an output root with ingest/, curate/, captions/ or tokens/ in it (as `tessera demo` "
            "and the Dagster assets write), or one of those stage folders."
        ),
    )
    p.add_argument("out", type=Path, metavar="OUT", help="an output root or one stage folder")
    p.add_argument("--out", dest="html", type=Path, metavar="HTML", default=None,
                   help="where to write the page (default: OUT/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the sections, write the page, and say where it is."""
    from pipelines.stats.html_report import write_report
    from pipelines.tracks import tracks

    stages = [stage for t in tracks() if t.has("report") for stage in t.get("report")]
    print(f"report: {write_report(args.out, stages, args.html)}")
    return 0
