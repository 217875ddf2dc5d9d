"""Emu-style next-token training on Emu3 token shards with transformers' `Emu3ForCausalLM`.

One process: `python -m pipelines.train.emu3 TOKENS --out RUN [--steps N ...]`. A cluster:
`torchrun --nnodes N --nproc_per_node 8 --rdzv_endpoint HOST:PORT -m pipelines.train.emu3 TOKENS --out RUN ...`
(DDP, NCCL on GPUs, gloo on CPU; each rank sees its own slice of the data). Reports loss and tokens/s as the last
JSON line, and as Dagster Pipes metadata when launched by Dagster.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from pipelines.core.errors import TesseraUserError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options of the Emu3 training job."""
    p = argparse.ArgumentParser(prog="python -m pipelines.train.emu3")
    p.add_argument("tokens", type=Path, help="a `tessera tokenize` output folder (or its emu3_tokens/)")
    p.add_argument("--out", type=Path, required=True, help="where the final checkpoint is saved")
    p.add_argument("--lm", default="tiny", help="`tiny`, a local Emu3ForCausalLM folder, or a hub id")
    p.add_argument("--tokenizer", default="tiny", help="text tokenizer: `tiny`, a folder, or a hub id")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--pack-to", type=int, default=None, help="pack samples into sequences of this many tokens")
    p.add_argument("--caption-dropout", type=float, default=0.0, help="0.05 for Emu3 SFT")
    p.add_argument("--visual-loss-only", action="store_true")
    p.add_argument("--no-shuffle", action="store_true", help="same batches in the same order (for loss checks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    return p.parse_args(argv)


def _distributed() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _batches(loader, sampler):
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        loader.dataset.set_epoch(epoch)
        yield from loader
        epoch += 1


def train(args: argparse.Namespace, reporter) -> dict:
    """The training loop; returns the summary metrics."""
    from torch.utils.data import DataLoader, DistributedSampler

    from models.emu3_lm import load_lm, load_tokenizer
    from pipelines.tokenize.emu3_token_dataset import Emu3TokenDataset, collate

    rank, world = _distributed()
    torch.manual_seed(args.seed)
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(args.tokenizer)
    ds = Emu3TokenDataset(args.tokens, tokenizer, pack_to=args.pack_to, caption_dropout=args.caption_dropout,
                          visual_loss_only=args.visual_loss_only, seed=args.seed)
    if len(ds) == 0:
        why = f"all {len(ds.too_long)} are longer than --pack-to {args.pack_to} tokens" if ds.too_long else "none found"
        raise TesseraUserError(f"no training samples in {args.tokens}: {why}")
    sampler = DistributedSampler(ds, world, rank, shuffle=not args.no_shuffle, seed=args.seed) if world > 1 else None
    gen = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(ds, batch_size=args.batch_size, sampler=sampler, collate_fn=collate, generator=gen,
                        shuffle=sampler is None and not args.no_shuffle)
    model = load_lm(args.lm, args.dtype).to(device).train()
    wrapped = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    losses, tokens, t0 = [], 0, time.time()
    for step, batch in zip(range(args.steps), _batches(loader, sampler)):
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = wrapped(**batch).loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        losses.append(float(loss.detach()))
        tokens += int(batch["attention_mask"].sum()) * world
        reporter.log(f"step {step + 1}/{args.steps} loss {losses[-1]:.4f}")
    seconds = time.time() - t0
    if rank == 0:
        model.save_pretrained(args.out / "checkpoint")
        tokenizer.save_pretrained(args.out / "checkpoint")
    return {"job": "emu3", "steps": len(losses), "losses": losses, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
            "samples": len(ds), "too_long": len(ds.too_long), "world_size": world, "seconds": round(seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m pipelines.train.emu3` and torchrun."""
    from pipelines.train.report import fail, job_reporter, main_process

    args = parse_args(argv)
    try:
        from pipelines.tokenize.emu3_sequence import token_files

        if not token_files(args.tokens):
            return fail(f"{args.tokens} holds no emu3_tokens/*.parquet: run `tessera tokenize` first")
        with job_reporter(main_process()) as reporter:
            reporter.finish(train(args, reporter))
    except TesseraUserError as err:
        return fail(str(err))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
