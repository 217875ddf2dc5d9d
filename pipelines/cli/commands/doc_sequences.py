"""`tessera doc-sequences`: curated interleaved documents -> Emu3 (or Emu1/Emu2 placeholder) token sequences."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Lay out every curated document (CURATED/documents/NNNNN.tar) as one training sequence, in reading order.
Consecutive text items are joined ("\\n\\n" for OBELICS paragraphs, " " for MMC4 sentences) and encoded once.

  emu3: BOS text <|image start|> "h*w" <|image token|> (row <|extra_200|>)*h <|extra_201|> <|image end|> ... EOS,
        each image its Emu3 token grid from TOK (images without a token row are left out);
  emu2: [IMG] <image>*N [/IMG] per image (Emu1 N=32, Emu2 N=64), for embedding-regression training; the
        images' keys are listed per row so a trainer can load their pixels.

Writes OUT/sequences/NNNNN.parquet, OUT/sequences_dropped/NNNNN.parquet (drop_reason: image_not_tokenized,
no_image, too_long, malformed_document) and OUT/manifest.json. A rerun resumes and skips finished tars."""


def run_doc_sequences(args: argparse.Namespace) -> int:
    """Build the sequences of every curated document tar."""
    from pipelines.documents.sequences import build_sequences

    m = build_sequences(args.curated, args.tokens, args.out, tokenizer_ref=args.tokenizer, layout=args.layout,
                        n_query=args.n_query, text_sep=args.text_sep, max_length=args.max_length)
    print(f"doc-sequences ({m['layout']}): {m['kept']}/{m['documents']} documents kept, {m['images']} images, "
          f"{m['tokens']} tokens; dropped {m['dropped'] or 'none'}; manifest: {Path(args.out) / 'manifest.json'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `doc-sequences`."""
    p = sub.add_parser("doc-sequences", help="lay out curated interleaved documents as Emu3/Emu2 token sequences",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("curated", type=Path, metavar="CURATED", help="curation output holding documents/NNNNN.tar")
    p.add_argument("--tokens", type=Path, metavar="TOK",
                   help="`tessera tokenize` output (emu3_tokens/*.parquet); required for emu3; with emu2 it keeps "
                        "only the images that have a token row")
    p.add_argument("--out", type=Path, required=True, help="output folder; a rerun with the same settings resumes it")
    p.add_argument("--layout", choices=("emu3", "emu2"), default="emu3")
    p.add_argument("--n-query", type=int, default=64, help="<image> placeholders per image for --layout emu2 "
                                                           "(Emu1 32, Emu2 64)")
    p.add_argument("--tokenizer", default="tiny", help="text tokenizer: `tiny`, a local folder or a hub id")
    p.add_argument("--text-sep", default=None, help="joins consecutive text items (default: by source, "
                                                    "\"\\n\\n\" OBELICS, \" \" MMC4)")
    p.add_argument("--max-length", type=int, default=None,
                   help="drop documents longer than this many tokens as too_long (never truncated)")
    p.set_defaults(func=run_doc_sequences)
