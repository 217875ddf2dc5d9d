"""A-InfoNCE (Yu et al., ECCV 2022; yqy2001/A-InfoNCE) for CLIP's image-text batches.

Two mechanisms of the paper's Asym-AdvCL code, carried from its multi-view SupCon batch to CLIP's cross-modal one
(docs/a_infonce.md has the formulas and every place this differs from the original):
- inferior positives (IP): the (adversarial image, caption) pair is added with weight λ = `adv_weight`, its two
  directions mixed asymmetrically with stop-gradient on the contrast side, α = `stpg_degree` (α < 0: off, plain);
- hard negatives (HN): HCL's reweighting of the negatives by exp(β·logit) with the τ⁺ (`tau_plus`) debiasing and
  HCL's lower bound on the negative mass.
With no adversarial features (or λ = 0) and β = τ⁺ = 0 it is open_clip's `ClipLoss`, value and gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

def positive_terms(anchor: torch.Tensor, contrast: torch.Tensor, logit_scale: torch.Tensor | float,
                   beta: float = 0.0, tau_plus: float = 0.0, logit_bias: torch.Tensor | None = None) -> torch.Tensor:
    """Per-row −log p(contrast[i] | anchor[i]) over the logits s·anchor·contrastᵀ (+ b) (row i's positive: column i).

    β = τ⁺ = 0: plain softmax cross-entropy. Otherwise HCL's hard-negative estimate replaces the negative sum.
    """
    logits = logit_scale * anchor @ contrast.T
    if logit_bias is not None:
        logits = logits + logit_bias
    if logits.dtype in (torch.float16, torch.bfloat16):  # exp and log in half precision lose the small terms
        logits = logits.float()
    labels = torch.arange(logits.shape[0], device=logits.device)
    if beta == 0 and tau_plus == 0:
        return F.cross_entropy(logits, labels, reduction="none")
    n_neg = logits.shape[0] - 1
    if n_neg == 0:  # one pair: no negatives, like cross-entropy over a single logit
        return logits.diagonal() * 0
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    shift = logits.max(dim=1, keepdim=True).values.detach()  # e^s overflows float32 at CLIP's s = 100
    exp = torch.exp(logits - shift)
    pos = exp.diagonal()
    # imp_ij / mean_k imp_ik with imp = e_ij^β over the negatives of row i, i.e. N·softmax(β·logit) (shift-free)
    weights = n_neg * torch.softmax((beta * logits).masked_fill(eye, float("-inf")), dim=1)
    neg = (weights * exp).masked_fill(eye, 0.0).sum(dim=1)
    ng = (neg - tau_plus * n_neg * pos) / (1 - tau_plus)
    # HCL's floor N·e^(−s) (every e^logit is at least e^(−s) for unit features), kept in unshifted units; in logs,
    # because at CLIP's s = 100 a far-off positive's shifted e^logit underflows
    low = -torch.as_tensor(logit_scale, dtype=logits.dtype, device=logits.device).detach()
    if logit_bias is not None:
        low = low + logit_bias.detach()
    log_floor = math.log(n_neg) + low - shift.squeeze(1)
    log_ng = torch.where(ng > 0, torch.log(ng.clamp_min(torch.finfo(ng.dtype).tiny)), -torch.inf)
    log_pos = logits.diagonal() - shift.squeeze(1)
    return torch.logaddexp(log_pos, torch.maximum(log_ng, log_floor)) - log_pos


class AInfoNCELoss(nn.Module):
    """CLIP loss with A-InfoNCE's inferior-positive and hard-negative terms; ClipLoss's call signature."""

    def __init__(self, adv_weight: float = 1.0, stpg_degree: float = -1.0, beta: float = 0.0,
                 tau_plus: float = 0.0) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if not 0 <= tau_plus < 1:
            raise ValueError(f"tau_plus must be in [0, 1), got {tau_plus}")
        if stpg_degree > 1:
            raise ValueError(f"stpg_degree must be <= 1 (negative: off), got {stpg_degree}")
        self.adv_weight, self.stpg_degree, self.beta, self.tau_plus = adv_weight, stpg_degree, beta, tau_plus

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                logit_bias: torch.Tensor | None = None, output_dict: bool = False, *,
                adv_image_features: torch.Tensor | None = None, stpg_degree: float | None = None):
        """Clean CLIP term + λ·IP term (ClipLoss's arguments first). `stpg_degree` overrides α for this call."""
        def mean(anchor, contrast):
            return positive_terms(anchor, contrast, logit_scale, self.beta, self.tau_plus, logit_bias).mean()

        clean = 0.5 * (mean(image_features, text_features) + mean(text_features, image_features))
        ip = clean.new_zeros(())
        if adv_image_features is not None and self.adv_weight != 0:
            alpha = self.stpg_degree if stpg_degree is None else float(stpg_degree)
            adv, txt = adv_image_features, text_features
            if alpha < 0:  # no stop-gradient: the adversarial pair is one more plain CLIP pair
                ip = 0.5 * (mean(adv, txt) + mean(txt, adv))
            else:  # α: the caption pulled to sg(adversarial image); 1−α: the adversarial image pulled to sg(caption)
                ip = alpha * mean(txt, adv.detach()) + (1 - alpha) * mean(adv, txt.detach())
            ip = self.adv_weight * ip
        total = clean + ip
        if output_dict:
            return {"contrastive_loss": clean, "inferior_positive_loss": ip}
        return total


class AdaptiveStopGrad:
    """Asym-AdvCL's adaptive α: after `warmup_epochs`, α rises from `stpg_degree` to 0.5 as the clean/adversarial
    feature distance falls from its warm-up mean to `d_min`."""

    def __init__(self, stpg_degree: float, warmup_epochs: int, d_min: float = 0.4) -> None:
        self.stpg_degree, self.warmup_epochs, self.d_min = stpg_degree, warmup_epochs, d_min
        self.total, self.count = 0.0, 0

    @property
    def mean_distance(self) -> float:
        return self.total / self.count if self.count else 0.0

    def __call__(self, distance: float, epoch: int, n: int) -> float:
        """α for a batch of `n` pairs at 0-based `epoch` whose mean ‖f(clean) − f(adv)‖₂ is `distance`."""
        if epoch + 1 <= self.warmup_epochs:
            self.total += distance * n
            self.count += n
            return self.stpg_degree
        mean = self.mean_distance
        if distance > mean:
            return self.stpg_degree
        if distance < self.d_min or mean <= self.d_min:
            return 0.5
        return (mean - distance) / (mean - self.d_min) * (0.5 - self.stpg_degree) + self.stpg_degree


def pgd_images(model: nn.Module, images: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
               eps: float, step_size: float, steps: int, random_start: bool = True) -> torch.Tensor:
    """L∞ PGD views of a normalized image batch that raise the plain CLIP loss against `text_features`.

    ε and the step are in [0, 1] pixel units (the model's own mean/std undo the normalization; the job's defaults are
    Asym-AdvCL's 8/255, 2/255, 5 steps); returns normalized images, detached. Parameter gradients are not touched.
    """
    mean = torch.tensor(model.visual.image_mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std = torch.tensor(model.visual.image_std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    clean = (images * std + mean).detach()
    texts = text_features.detach()
    scale = torch.as_tensor(logit_scale).detach()
    x = clean.clone()
    if random_start:
        x = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            feats = F.normalize(model.encode_image((x - mean) / std), dim=-1)
            loss = 0.5 * (positive_terms(feats, texts, scale).mean() + positive_terms(texts, feats, scale).mean())
            (grad,) = torch.autograd.grad(loss, x)
        x = x.detach() + step_size * grad.sign()
        x = torch.minimum(torch.maximum(x, clean - eps), clean + eps).clamp(0, 1)
    return ((x - mean) / std).detach()
