"""CLI subcommands: each module here exposes `register(subparsers)`; `pipelines.cli.main` finds them all."""
