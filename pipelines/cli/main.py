"""`tessera`: the command line. Subcommands live in `pipelines/commands/`, one module each."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from pydantic import ValidationError

from pipelines.cli import commands
from pipelines.core.errors import TesseraUserError


PIPELINE_ORDER = ["ingest", "stats", "curate", "fuse", "tokenize", "export_eva_clip", "train", "demo"]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tessera",
        description="Curate web-scale image-text metadata into re-captioned, tokenized training shards.",
    )
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
    """Entry point: run one subcommand; user errors print one line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TesseraUserError as err:
        print(f"tessera: error: {err}", file=sys.stderr)
        return 2
    except ValidationError as err:
        first = err.errors()[0]
        option = "--" + "-".join(str(p) for p in first["loc"]).replace("_", "-")
        print(f"tessera: error: {option}: {first['msg']} (got {first.get('input')!r})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tessera: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
