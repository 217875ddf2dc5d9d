"""`tessera export-eva-clip`: webdataset tars + sizes.json for open_clip's trainer, sources mixed by weight."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.core.errors import TesseraUserError


def run(args: argparse.Namespace) -> int:
    """Export the shards and print where they are and how to train on them."""
    from pipelines.export.eva_clip import export_eva_clip, parse_weights
    from pipelines.export.folder import brace_pattern, read_index, train_data

    for opt, path in [("SRC", s) for s in args.src] + [("--captions", args.captions), ("--curated", args.curated)]:
        if path is not None and not Path(path).is_dir():
            raise TesseraUserError(f"{opt} {path} is not a folder")
    if args.samples_per_shard < 1:
        raise TesseraUserError("--samples-per-shard must be at least 1")
    m = export_eva_clip(args.src, args.out, parse_weights(args.weights), args.captions, args.curated,
                        args.samples_per_shard, args.seed, name=args.name)
    print(f"train with: python -m open_clip_train.main --dataset-type webdataset "
          f"--train-data '{brace_pattern(args.out, m['id'], m['shards'])}' ...")
    others = len(read_index(args.out)) - 1
    if others > 0:
        print(f"{args.out} holds {others} more export(s); all of them, sized by {args.out}/sizes.json: "
              f"--train-data '{train_data(args.out)[0]}'")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `export-eva-clip`."""
    p = sub.add_parser(
        "export-eva-clip", help="write open_clip/EVA-CLIP webdataset shards mixing sources by weight",
        description="Write OUT/<id>-NNNNN.tar and OUT/sizes.json for open_clip_train. The id is a hash of the inputs "
                    "and settings (or --name), so several exports can share OUT and open_clip sizes any "
                    "'OUT/<a>-{...}.tar::OUT/<b>-{...}.tar' mix from OUT/sizes.json without --train-num-samples. "
                    "Rerunning the same export resumes it, or does nothing when it is finished.")
    p.add_argument("src", type=Path, nargs="+",
                   help="ingest output folder(s); with several, tar keys become <index>_<key> (index of the SRC, "
                        "from 0) since every ingest folder numbers its keys from 0")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--weights", help="source mix, e.g. laion=0.8,coyo=0.2 (default: everything, as found)")
    p.add_argument("--captions", type=Path,
                   help="re-captioning output (parquet with key, final_caption) of the FIRST SRC only; "
                        "samples whose caption it dropped (--fallback drop) are left out")
    p.add_argument("--curated", type=Path,
                   help="curation output of the FIRST SRC only: only its curated/ keys of that folder are exported")
    p.add_argument("--name",
                   help="export id that prefixes its tars, NAME-00000.tar (default: a hash of the inputs and "
                        "settings); exports with different ids can share OUT and be mixed with open_clip's `::`")
    p.add_argument("--samples-per-shard", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
