"""`tessera ingest --source mmc4|obelics`: the document track's ingest command (images through the pair download)."""

from __future__ import annotations

import argparse


def ingest_cli(args: argparse.Namespace) -> int:
    """Parse the documents, download their distinct image URLs once, link them; print the image and document lines."""
    from pipelines.documents.ingest import ingest_documents
    from pipelines.ingest.download_options import image_ingest_options
    from pipelines.stats.report import print_ingest_report

    documents, manifest, counts = ingest_documents(args.source, args.metadata, args.out, **image_ingest_options(args))
    print_ingest_report(args.out, manifest, brief=args.quiet)
    print_document_summary(documents, counts)
    return 0


def print_document_summary(manifest, counts: dict) -> None:
    """One line for documents and one for image occurrences, each broken down by outcome."""
    def fmt(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items()))

    print(f"documents: {manifest.input_documents} read -> {fmt(counts['documents'])}")
    print(f"images in documents: {manifest.image_occurrences} ({manifest.distinct_urls} distinct URLs) -> "
          f"{fmt(counts['images'])}")
