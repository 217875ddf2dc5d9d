"""`tessera demo`: run the whole pipeline on the bundled sample with tiny models."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.demo.run import run_demo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole pipeline on bundled samples: image pairs, MMC4/OBELICS documents, WebVid/Panda-70M clips",
        description=(
            "Build a ~250-row LAION-format sample (real photographs from scikit-image, generated images, and rows "
            "that fail on purpose: 404s, HTML bodies, truncated JPEGs, opt-out headers, duplicate and empty URLs), "
            "serve it over HTTP on 127.0.0.1, and run every stage on it with tiny random-init models. "
            "Rerunning replaces the previous demo output."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    p.set_defaults(func=lambda args: (run_demo(args.out), 0)[1])
