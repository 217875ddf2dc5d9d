"""`tessera`: the command line. Each subcommand is a module of `pipelines/cli/commands/` with a `register(sub)`;
a track's own commands (`tessera mol ...`) come from its `commands` role (`pipelines/cli/commands/track_commands.py`)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from pydantic import ValidationError

from pipelines.cli import commands
from pipelines.core.errors import TesseraUserError, describe_os_error


PIPELINE_ORDER = ["ingest", "stats", "report", "curate", "fuse", "tokenize", "tokenize_video", "doc_sequences", "export_eva_clip", "export_video_frames", "train", "demo"]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tessera",
        description="Curate web-scale image-text metadata into re-captioned, tokenized training shards.",
    )
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of a failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    names = [m.name for m in pkgutil.iter_modules(commands.__path__)]
    # Listed in pipeline order in --help; a new module lands at the end.
    names.sort(key=lambda n: (PIPELINE_ORDER.index(n) if n in PIPELINE_ORDER else len(PIPELINE_ORDER), n))
    for name in names:
        module = importlib.import_module(f"{commands.__name__}.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one subcommand; every failure prints one line (a traceback only with --debug)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("tessera: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every failure becomes one line unless --debug
        if args.debug:
            raise
        return report_error(err)


def report_error(err: Exception) -> int:
    """Print one line for `err`; return 2 for the user's or the machine's side, 1 for a bug of ours."""
    if isinstance(err, TesseraUserError):
        print(f"tessera: error: {err}", file=sys.stderr)
        return 2
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        option = "--" + "-".join(str(p) for p in first["loc"]).replace("_", "-")
        print(f"tessera: error: {option}: {first['msg']} (got {first.get('input')!r})", file=sys.stderr)
        return 2
    cause = describe_os_error(err)
    if cause is not None:
        print(f"tessera: error: {cause}; fix that and rerun the same command to resume", file=sys.stderr)
        return 2
    line = (str(err).strip().splitlines() or [""])[0][:300]
    print(f"tessera: internal error: {type(err).__name__}: {line} (rerun with --debug for the traceback)",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
