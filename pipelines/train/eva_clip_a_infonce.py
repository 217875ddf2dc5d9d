"""EVA-CLIP job with `--loss a-infonce`: Tessera's own loop over the same `tessera export-eva-clip` shards.

open_clip_train builds its loss from its own flags (`create_loss`) and runs the model on the clean batch only, so
neither the A-InfoNCE loss nor PGD views can go in without patching its internals. This loop reuses what it can of
open_clip_train: its argument parser (so the same `open_clip_args` apply), its webdataset pipeline (`get_data`), its
AdamW parameter groups, cosine schedule, logit-scale clamp and checkpoint layout (`LOGS/NAME/checkpoints/epoch_N.pt`).
One process only. Run as `python -m pipelines.train.eva_clip_a_infonce [open_clip_train args] [A-InfoNCE options]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from pipelines.train.report import fail, job_reporter

# name: (type, default, where the default comes from, help); Asym-AdvCL's pretraining_advCL.py and shell/*.sh.
OPTIONS: dict[str, tuple[type, float, str, str]] = {
    "adv-weight": (float, 1.0, "code", "λ, weight of the (adversarial image, caption) pair"),
    "stpg-degree": (float, 0.2, "paper IP/IPHN scripts", "α of the asymmetric stop-gradient: 0 = the caption is "
                                                         "never pulled to the adversarial image; negative = off"),
    "stpg-adaptive": (int, -1, "code", "warm-up epochs before α follows the clean/adversarial distance; -1 = fixed"),
    "d-min": (float, 0.4, "code", "distance at which the adaptive α reaches 0.5"),
    "beta": (float, 1.0, "code", "β, hard-negative concentration; β = τ⁺ = 0 turns hard negatives off"),
    "tau-plus": (float, 0.1, "code", "τ⁺, positive-class prior of the debiased negative sum, in [0, 1)"),
    "pgd-steps": (int, 5, "code", "PGD iterations for the adversarial views; 0 = no adversarial views"),
    "pgd-eps": (float, 8 / 255, "code: 8/255", "L∞ radius in [0, 1] pixel units"),
    "pgd-step-size": (float, 2 / 255, "code: 2/255", "PGD step in [0, 1] pixel units"),
}


def add_options(parser: argparse.ArgumentParser, with_defaults: bool = True) -> None:
    """The A-InfoNCE options; without defaults (the CLI) an unset option stays None and the job's default applies."""
    for name, (kind, default, source, text) in OPTIONS.items():
        parser.add_argument(f"--{name}", type=kind, default=default if with_defaults else None,
                            help=f"{text} [default {default:.4g}, {source}]")


def option_argv(values: dict[str, float | None]) -> list[str]:
    """`--name value` for every option that was set (keys as argparse dests: adv_weight, ...)."""
    out: list[str] = []
    for name in OPTIONS:
        value = values.get(name.replace("-", "_"))
        if value is not None:
            out += [f"--{name}", repr(value)]
    return out


def _optimizer(model, args):
    import torch

    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
              {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": args.wd}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps)


def train(opts: argparse.Namespace, args: argparse.Namespace, reporter) -> dict:
    """Train for `args.epochs`; returns the summary metrics."""
    import open_clip
    import torch
    from open_clip_train.data import get_data
    from open_clip_train.precision import get_autocast
    from open_clip_train.scheduler import cosine_lr

    from pipelines.train.a_infonce import AdaptiveStopGrad, AInfoNCELoss, pgd_images

    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
        args.model, args.pretrained, precision=args.precision, device=device, output_dict=True)
    data = get_data(args, (preprocess_train, preprocess_val), 0, open_clip.get_tokenizer(args.model))["train"]
    optimizer = _optimizer(model, args)
    batches = data.dataloader.num_batches
    scheduler = cosine_lr(optimizer, args.lr, args.warmup, batches * args.epochs)
    scaler = torch.amp.GradScaler(device.type) if args.precision == "amp" else None
    autocast = get_autocast(args.precision, device_type=device.type)
    loss_fn = AInfoNCELoss(opts.adv_weight, opts.stpg_degree, opts.beta, opts.tau_plus)
    adaptive = AdaptiveStopGrad(opts.stpg_degree, opts.stpg_adaptive, opts.d_min) if opts.stpg_adaptive >= 0 else None
    losses, rates, alpha = [], [], opts.stpg_degree
    for epoch in range(args.epochs):
        data.set_epoch(epoch)
        model.train()
        for i, (images, texts) in enumerate(data.dataloader):
            t0 = time.time()
            scheduler(batches * epoch + i)
            images, texts = images.to(device), texts.to(device)
            with autocast():
                out = model(images, texts)
                adv = None
                if opts.pgd_steps > 0:
                    views = pgd_images(model, images, out["text_features"], out["logit_scale"], opts.pgd_eps,
                                       opts.pgd_step_size, opts.pgd_steps)
                    adv = model.encode_image(views, normalize=True)
                    if adaptive is not None:
                        gap = (out["image_features"] - adv).detach().float().norm(dim=-1).mean().item()
                        alpha = adaptive(gap, epoch, len(images))
                parts = loss_fn(out["image_features"], out["text_features"], out["logit_scale"],
                                out.get("logit_bias"), output_dict=True, adv_image_features=adv, stpg_degree=alpha)
                loss = parts["contrastive_loss"] + parts["inferior_positive_loss"]
            optimizer.zero_grad()
            (scaler.scale(loss) if scaler else loss).backward()
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))  # as open_clip_train does after each step
            losses.append(loss.item())
            rates.append(len(images) / max(time.time() - t0, 1e-9))
            reporter.log(f"step {len(losses)} epoch {epoch} loss {losses[-1]:.4f} "
                         f"clean {parts['contrastive_loss'].item():.4f} "
                         f"ip {parts['inferior_positive_loss'].item():.4f} alpha {float(alpha):.3f}")
        done = epoch + 1
        if done == args.epochs or (args.save_frequency > 0 and done % args.save_frequency == 0):
            torch.save({"epoch": done, "name": args.name, "state_dict": model.state_dict(),
                        "optimizer": optimizer.state_dict()}, Path(args.checkpoint_path) / f"epoch_{done}.pt")
    rates = rates[1:] or rates  # the first step includes start-up
    return {"steps": len(losses), "losses": losses, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "alpha": float(alpha),
            "samples_per_s": sum(rates) / len(rates) if rates else None}


def main(argv: list[str] | None = None) -> int:
    """Parse the A-InfoNCE options and open_clip_train's own, train, report a summary like `eva_clip`."""
    import open_clip
    from open_clip_train.distributed import init_distributed_device
    from open_clip_train.params import parse_args

    from pipelines.train.eva_clip import CONFIG_DIR

    parser = argparse.ArgumentParser(add_help=False)
    add_options(parser)
    opts, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return fail("--loss a-infonce trains in one process; use --nproc 1")
    args = parse_args(rest)
    if not args.train_data or not args.name:
        return fail("--train-data and --name are required")
    init_distributed_device(args)
    run_dir = Path(args.logs) / args.name
    args.checkpoint_path = str(run_dir / "checkpoints")
    if run_dir.exists():
        return fail(f"{run_dir} already exists; pick another --name")
    Path(args.checkpoint_path).mkdir(parents=True)
    (run_dir / "a_infonce.json").write_text(json.dumps(vars(opts), indent=1))
    open_clip.add_model_config(CONFIG_DIR)
    with job_reporter() as reporter:
        t0 = time.time()
        metrics = train(opts, args, reporter)
        reporter.finish({"job": "eva_clip", "loss": "a-infonce", **metrics, "seconds": round(time.time() - t0, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
