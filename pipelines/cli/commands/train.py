"""`tessera train {eva-clip,emu3}`: launch a training job on this machine (one process or torchrun)."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import time
from pathlib import Path

from pipelines.core.errors import TesseraUserError
from pipelines.train.eva_clip_a_infonce import add_options


def _run(cmd: list[str], dry_run: bool) -> int:
    print(shlex.join(cmd), flush=True)
    if dry_run:
        return 0
    return subprocess.call(cmd)


def run_eva_clip(args: argparse.Namespace) -> int:
    """Contrastive training with open_clip's trainer on `tessera export-eva-clip` shards."""
    from pipelines.train.eva_clip_a_infonce import option_argv
    from pipelines.train.launch import eva_clip_command

    if not Path(args.data).is_dir():
        raise TesseraUserError(f"DATA {args.data} is not a folder")
    loss_args = option_argv(vars(args))
    if args.loss == "clip" and loss_args:
        raise TesseraUserError(f"{loss_args[0]} applies to --loss a-infonce only")
    if args.loss == "a-infonce" and args.nproc > 1:
        raise TesseraUserError("--loss a-infonce trains in one process; use --nproc 1")
    if args.tau_plus is not None and not 0 <= args.tau_plus < 1:
        raise TesseraUserError(f"--tau-plus {args.tau_plus}: must be in [0, 1)")
    if args.stpg_degree is not None and args.stpg_degree > 1:
        raise TesseraUserError(f"--stpg-degree {args.stpg_degree}: must be at most 1 (negative turns it off)")
    name = args.name or time.strftime("run-%Y%m%d-%H%M%S")
    cmd = eva_clip_command(args.data, args.out, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                           lr=args.lr, name=name, nproc=args.nproc, extra=shlex.split(args.job_args),
                           loss=args.loss, loss_args=loss_args)
    return _run(cmd, args.dry_run)


def run_emu3(args: argparse.Namespace) -> int:
    """Next-token training of Emu3ForCausalLM on token shards."""
    from pipelines.train.launch import emu3_command

    if not Path(args.tokens).is_dir():
        raise TesseraUserError(f"TOKENS {args.tokens} is not a folder")
    extra = shlex.split(args.job_args)
    if args.pack_to:
        extra += ["--pack-to", str(args.pack_to)]
    if args.visual_loss_only:
        extra.append("--visual-loss-only")
    if args.no_shuffle:
        extra.append("--no-shuffle")
    if args.caption_dropout:
        extra += ["--caption-dropout", str(args.caption_dropout)]
    cmd = emu3_command(args.tokens, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr, lm=args.lm,
                       tokenizer=args.tokenizer, nproc=args.nproc, extra=extra)
    return _run(cmd, args.dry_run)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `train eva-clip` and `train emu3`."""
    p = sub.add_parser("train", help="train EVA-CLIP (open_clip) or Emu3 (next-token) on exported shards")
    jobs = p.add_subparsers(dest="job", metavar="JOB")
    jobs.required = True

    e = jobs.add_parser("eva-clip", help="contrastive training with open_clip_train on export-eva-clip shards")
    e.add_argument("data", type=Path, help="a `tessera export-eva-clip` output folder (with sizes.json); "
                                             "trains on every export in it")
    e.add_argument("--out", type=Path, required=True, help="open_clip --logs folder")
    e.add_argument("--model", default="tessera-tiny-clip",
                   help="open_clip model name (tessera-tiny-clip, tessera-tiny-eva02-clip, EVA02-L-14, ...)")
    e.add_argument("--epochs", type=int, default=1)
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--lr", type=float, default=5e-4)
    e.add_argument("--name", help="run name under --out (default: run-TIMESTAMP)")
    e.add_argument("--nproc", type=int, default=1, help="processes on this machine (torchrun when > 1)")
    e.add_argument("--dry-run", action="store_true", help="print the command only")
    e.add_argument("--job-args", default="",
                   help='more open_clip_train.main options as one string: --job-args="--accum-freq 2"')
    e.add_argument("--loss", choices=["clip", "a-infonce"], default="clip",
                   help="clip: open_clip_train's ClipLoss (default); a-infonce: A-InfoNCE with PGD views in "
                        "Tessera's own loop, one process (docs/a_infonce.md)")
    add_options(e.add_argument_group("A-InfoNCE (--loss a-infonce)"), with_defaults=False)
    e.set_defaults(func=run_eva_clip)

    m = jobs.add_parser("emu3", help="next-token training of Emu3ForCausalLM on Emu3 token shards")
    m.add_argument("tokens", type=Path, help="a `tessera tokenize` output folder")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--lm", default="tiny")
    m.add_argument("--tokenizer", default="tiny")
    m.add_argument("--steps", type=int, default=10)
    m.add_argument("--batch-size", type=int, default=2)
    m.add_argument("--lr", type=float, default=3e-3)
    m.add_argument("--pack-to", type=int)
    m.add_argument("--visual-loss-only", action="store_true")
    m.add_argument("--caption-dropout", type=float, default=0.0)
    m.add_argument("--no-shuffle", action="store_true", help="same batches in the same order (loss checks)")
    m.add_argument("--nproc", type=int, default=1, help="processes on this machine (torchrun when > 1)")
    m.add_argument("--dry-run", action="store_true", help="print the command only")
    m.add_argument("--job-args", default="",
                   help='more pipelines.train.emu3 options as one string: --job-args="--dtype bfloat16"')
    m.set_defaults(func=run_emu3)
