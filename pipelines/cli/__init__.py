"""The `tessera` command line: `main` parses and dispatches; one module per subcommand in `commands/`."""

from pipelines.cli.main import main

__all__ = ["main"]
