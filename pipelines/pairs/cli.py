"""`tessera ingest --source laion|coyo|datacomp|capsfusion`: the pair track's ingest command."""

from __future__ import annotations

import argparse


def ingest_cli(args: argparse.Namespace) -> int:
    """Prepare the partition, download its images, then print the end-of-ingest report."""
    from pipelines.ingest.download_options import image_ingest_options
    from pipelines.ingest.sequence import ingest
    from pipelines.stats.report import print_ingest_report

    manifest = ingest(args.source, args.metadata, args.out, **image_ingest_options(args))
    print_ingest_report(args.out, manifest, brief=args.quiet)
    return 0
