"""CLI subcommands: each module here exposes `register(subparsers)`; `pipelines.cli` finds them all."""
