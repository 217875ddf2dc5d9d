"""`tessera fl-partition`: CreamFL-style federated client partitions (image, text, image-text) plus a public set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.fl.labels import SCHEMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fl-partition",
        help="split kept samples into CreamFL's public set and image / text / image-text federated clients",
        description=(
            "Draw a seeded uniform public image-text set from INGEST_OUT's kept samples, cut the rest into image, "
            "text and image-text pools, split the image and text pools among their clients with flwr-datasets' "
            "DirichletPartitioner over a stand-in label and the image-text pool with its ShardPartitioner. Writes "
            "OUT/clients/<type>_<i>.parquet, OUT/public.parquet, OUT/manifest.json and OUT/clients.png; the same "
            "inputs and --seed give the same files. See docs/creamfl.md."
        ),
    )
    p.add_argument("ingest_out", type=Path, metavar="INGEST_OUT", help="a folder written by `tessera ingest`")
    p.add_argument("--curated", type=Path, metavar="CUR", help="keep only the samples `tessera curate` kept")
    p.add_argument("--out", type=Path, required=True, metavar="OUT", help="folder for the partition")
    p.add_argument("--img-clients", type=int, default=10, help="image-only clients (CreamFL: 10, CIFAR-100)")
    p.add_argument("--txt-clients", type=int, default=10, help="text-only clients (CreamFL: 10, AG_NEWS)")
    p.add_argument("--mm-clients", type=int, default=15, help="image-text clients (CreamFL: 15, Flickr30K)")
    p.add_argument("--public", type=int, default=50_000,
                   help="public image-text samples (CreamFL: 50,000 COCO pairs); capped by --public-max-fraction")
    p.add_argument("--public-max-fraction", type=float, default=0.5,
                   help="at most this share of the kept samples goes to the public set (default 0.5)")
    p.add_argument("--alpha", type=float, default=0.1, help="Dirichlet concentration (CreamFL: 0.1; small = skewed)")
    p.add_argument("--shards-per-client", type=int, default=10, help="shards per image-text client (CreamFL: 10)")
    p.add_argument("--label-column", default="auto", metavar="|".join(SCHEMES) + "|COLUMN",
                   help="stand-in class label for the split: a scheme or any sidecar column (default auto)")
    p.add_argument("--num-labels", type=int, default=20,
                   help="clusters for clip_cluster, hash buckets for caption_word (default 20)")
    p.add_argument("--min-partition-size", type=int, default=10,
                   help="resample the Dirichlet split until every client has this many samples (CreamFL: 10)")
    p.add_argument("--pool-split", choices=["clients", "creamfl"], default="clients",
                   help="divide the non-public samples by client count (default) or by CreamFL's dataset sizes "
                        "50k:120k:145k")
    p.add_argument("--seed", type=int, default=0, help="the one seed every random step derives from")
    p.add_argument("--no-plot", action="store_true", help="skip OUT/clients.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.fl.partition import FlPartitionConfig, partition
    from pipelines.fl.report import plot_clients, render

    cfg = FlPartitionConfig(
        img_clients=args.img_clients, txt_clients=args.txt_clients, mm_clients=args.mm_clients, public=args.public,
        public_max_fraction=args.public_max_fraction, alpha=args.alpha, shards_per_client=args.shards_per_client,
        label_column=args.label_column, num_labels=args.num_labels, min_partition_size=args.min_partition_size,
        pool_split=args.pool_split, seed=args.seed)
    manifest = partition(args.ingest_out, args.out, cfg, curated=args.curated)
    render(manifest)
    if not args.no_plot:
        print(f"plot: {plot_clients(manifest, args.out / 'clients.png')}", file=sys.stderr)
    print(f"partition: {args.out / 'manifest.json'}", file=sys.stderr)
    return 0
