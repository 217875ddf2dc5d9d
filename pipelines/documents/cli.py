"""The document track's commands: `tessera ingest --source mmc4|obelics` (images through the pair download) and
`tessera curate` with document presets."""

from __future__ import annotations

import argparse
import sys
import time

from pipelines.core.cli_options import clip_model_id, refuse_image_only_flags
from pipelines.core.errors import TesseraUserError


def ingest_cli(args: argparse.Namespace) -> int:
    """Parse the documents, download their distinct image URLs once, link them; print the image and document lines."""
    from pipelines.documents.ingest import ingest_documents
    from pipelines.ingest.download_options import image_ingest_options
    from pipelines.folders import print_ingest_report

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


def curate_cli(args: argparse.Namespace) -> int:
    """Document presets: score images against their documents' texts, select, write document shards."""
    from pipelines.documents.run import curate_documents, default_clip_model, document_presets

    presets = document_presets(args.preset)
    refuse_image_only_flags(args, "document")
    if args.batch_size < 1 or args.docs_per_shard < 1:
        raise TesseraUserError("--batch-size and --docs-per-shard must be at least 1")
    clip_model = args.clip_model or default_clip_model(presets)
    start = time.perf_counter()
    summary, shards = curate_documents(args.ingest_out, args.out, presets, clip_model,
                                       min_clip_score=args.min_clip_score, docs_per_shard=args.docs_per_shard,
                                       batch_size=args.batch_size, precision=args.precision,
                                       log=lambda line: print(line, file=sys.stderr))
    seconds = time.perf_counter() - start
    print(f"curate ({args.preset}, CLIP {clip_model_id(clip_model)}): {summary['documents']} documents -> kept "
          f"{summary['kept']} in {len(shards)} shards; {summary['images']} image occurrences -> kept "
          f"{summary['image_occurrences_kept']} ({summary['images_kept']} distinct) in {seconds:.1f} s")
    for title, rows in (("documents", summary["documents_by_outcome"]), ("images", summary["images_by_outcome"])):
        print(f"  {title}:")
        for row in rows:
            label = row["outcome"] + (f" ({row['reason']})" if row["reason"] else "")
            print(f"    {label:<44}{row['n']:>8}")
    print(f"  -> {args.out}/documents, doc_ledger.parquet, image_ledger.parquet, curated/ (tokenize --curated)")
    return 0
