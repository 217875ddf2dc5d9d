"""Command-line helpers every track shares: an option renamed with its old name still accepted, the curate flags
that only image-text presets use, a CLIP spec's model id."""

from __future__ import annotations

import argparse
import sys

from pipelines.core.errors import TesseraUserError


class _DeprecatedAlias(argparse.Action):
    """Store the value under the new option's dest and print one warning line naming the new option."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"tessera: warning: {option_string} is deprecated here, use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed_option(group, new: str, old: str, **kwargs) -> None:
    """Add option `new`, and `old` as a hidden alias of it that still works but warns (users have scripts)."""
    action = group.add_argument(new, **kwargs)
    group.add_argument(old, dest=action.dest, type=kwargs.get("type"), default=argparse.SUPPRESS,
                       action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS)


def refuse_image_only_flags(args: argparse.Namespace, kind: str) -> None:
    """Stop with one sentence when flags that only image-text presets use are given to `kind` presets."""
    unsupported = [flag for flag, value in (("--top-fraction", args.top_fraction),
                                            ("--near-dup-distance", args.near_dup_distance),
                                            ("--max-meta", args.max_meta), ("--min-meta", args.min_meta),
                                            ("--embeddings", args.embeddings)) if value]
    if args.engine != "local":
        unsupported.append(f"--engine {args.engine}")
    if unsupported:
        raise TesseraUserError(f"{', '.join(unsupported)} do(es) not apply to {kind} presets ({args.preset})")


def clip_model_id(spec: str) -> str:
    """The model id a `--clip-model` spec resolves to (for summaries)."""
    from models.clip_registry import resolve

    return resolve(spec).model_id
