"""Command-line helpers every track shares: an option renamed with its old name still accepted."""

from __future__ import annotations

import argparse
import sys


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
