"""A-InfoNCE for CLIP batches: the loss against a direct loop, its limits, where gradients go, PGD, and the job."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from pipelines.cli.main import main
from pipelines.export.eva_clip import export_eva_clip
from pipelines.train.a_infonce import AdaptiveStopGrad, AInfoNCELoss, pgd_images, positive_terms
from tokens_fixture import make_ingest, samples


def _feats(b: int = 6, d: int = 8, seed: int = 0, grad: bool = False) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = [F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=-1) for _ in range(3)]
    return [t.requires_grad_(grad) for t in out]


def _direct_term(anchor, contrast, s, i, beta, tau_plus) -> float:
    """−log p(positive i | anchor i), written out with loops (HCL's formula, no shift)."""
    b = len(anchor)
    e = [math.exp(s * float(anchor[i] @ contrast[j])) for j in range(b)]
    negs = [j for j in range(b) if j != i]
    if beta == 0 and tau_plus == 0:
        return -math.log(e[i] / sum(e))
    imp = [e[j] ** beta for j in negs]
    reweighted = sum(w * e[j] for w, j in zip(imp, negs)) / (sum(imp) / len(negs))
    ng = max((-tau_plus * len(negs) * e[i] + reweighted) / (1 - tau_plus), len(negs) * math.exp(-s))
    return -math.log(e[i] / (e[i] + ng))


def _direct_loss(img, txt, adv, s, lam, alpha, beta, tau_plus) -> float:
    b = len(img)
    mean = lambda a, c: sum(_direct_term(a, c, s, i, beta, tau_plus) for i in range(b)) / b  # noqa: E731
    clean = 0.5 * (mean(img, txt) + mean(txt, img))
    if adv is None:
        return clean
    ip = 0.5 * (mean(adv, txt) + mean(txt, adv)) if alpha < 0 else alpha * mean(txt, adv) + (1 - alpha) * mean(adv, txt)
    return clean + lam * ip


@pytest.mark.parametrize("lam,alpha,beta,tau_plus", [(1.0, -1.0, 0.0, 0.0), (0.7, 0.2, 1.0, 0.1),
                                                     (1.2, 0.0, 0.5, 0.0), (1.0, 1.0, 0.0, 0.12)])
def test_loss_matches_direct_computation(lam, alpha, beta, tau_plus):
    img, txt, adv = (t.detach() for t in _feats())
    s = 3.0
    loss = AInfoNCELoss(lam, alpha, beta, tau_plus)(img, txt, torch.tensor(s, dtype=torch.float64),
                                                    adv_image_features=adv)
    assert loss.item() == pytest.approx(_direct_loss(img, txt, adv, s, lam, alpha, beta, tau_plus), rel=1e-6)


def test_hn_floor_binds_like_hcl():
    # τ⁺ close to 1 drives the debiased negative sum below zero: HCL's floor N·e^(−s) takes over there
    img, txt, _ = (t.detach() for t in _feats())
    s = 2.0
    rows = positive_terms(img, txt, s, beta=0.0, tau_plus=0.95)
    e = torch.exp(s * img @ txt.T)
    pos, neg = e.diagonal(), e.sum(1) - e.diagonal()
    floored = (neg - 0.95 * 5 * pos) / 0.05 < 0
    assert floored.any()
    expected = torch.log(pos + 5 * math.exp(-s)) - torch.log(pos)
    assert torch.allclose(rows[floored], expected[floored])
    direct = [_direct_term(img, txt, s, i, 0.0, 0.95) for i in range(len(img))]
    assert torch.allclose(rows, torch.tensor(direct, dtype=rows.dtype))


@pytest.mark.parametrize("lam,adv,bias", [(1.0, False, None), (0.0, True, None), (1.0, False, -2.0)])
def test_reduces_to_open_clip_loss(lam, adv, bias):
    img, txt, a = _feats(b=7, d=16, seed=1, grad=True)
    scale = torch.tensor(14.3, dtype=torch.float64, requires_grad=True)
    b = None if bias is None else torch.tensor(bias, dtype=torch.float64)
    ours = AInfoNCELoss(adv_weight=lam, stpg_degree=0.2, beta=0.0, tau_plus=0.0)(
        img, txt, scale, b, adv_image_features=a if adv else None)
    ours.backward()
    got = [img.grad.clone(), txt.grad.clone(), scale.grad.clone()]
    for t in (img, txt, scale):
        t.grad = None
    ref = ClipLoss()(img, txt, scale, b)
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), abs=1e-12)
    for mine, theirs in zip(got, [img.grad, txt.grad, scale.grad]):
        assert torch.allclose(mine, theirs, atol=1e-12)
    assert a.grad is None  # no adversarial features or λ = 0: that branch is not even in the graph


def test_large_logit_scale_stays_finite():
    img, txt, adv = (t.detach().float() for t in _feats(b=16, d=8))
    scale = torch.tensor(100.0, requires_grad=True)
    loss = AInfoNCELoss(1.0, 0.2, 1.0, 0.1)(img, txt, scale, adv_image_features=adv)
    loss.backward()
    assert torch.isfinite(loss) and loss > 10 and torch.isfinite(scale.grad)
    # same value as the float64 computation: nothing underflowed
    ref = AInfoNCELoss(1.0, 0.2, 1.0, 0.1)(img.double(), txt.double(), torch.tensor(100.0).double(),
                                           adv_image_features=adv.double())
    assert loss.item() == pytest.approx(ref.item(), rel=1e-4)


def _grads(alpha: float, beta: float = 0.0):
    img, txt, adv = _feats(seed=2, grad=True)
    AInfoNCELoss(1.0, alpha, beta, 0.0)(img, txt, torch.tensor(5.0, dtype=torch.float64),
                                        adv_image_features=adv).backward()
    return img, txt, adv


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_stop_gradient_alpha_zero_keeps_the_caption_off_the_adversarial_pair(beta):
    # α = 0 ("totally stop for the clean branch"): only the adversarial image moves toward sg(caption)
    img, txt, adv = _grads(0.0, beta)
    clean_img, clean_txt, _ = _feats(seed=2, grad=True)
    AInfoNCELoss(1.0, 0.0, beta, 0.0)(clean_img, clean_txt, torch.tensor(5.0, dtype=torch.float64)).backward()
    assert torch.allclose(txt.grad, clean_txt.grad, atol=1e-12)  # the text gets nothing from the IP term
    assert adv.grad.abs().sum() > 0


def test_stop_gradient_alpha_one_keeps_the_adversarial_image_still():
    img, txt, adv = _grads(1.0)
    assert torch.count_nonzero(adv.grad) == 0  # the adversarial side is only ever a detached target


def test_stop_gradient_mixture_is_linear_in_alpha():
    txt_grad = {a: _grads(a)[1].grad for a in (0.0, 0.3, 1.0)}
    assert torch.allclose(txt_grad[0.3], 0.7 * txt_grad[0.0] + 0.3 * txt_grad[1.0], atol=1e-12)


def test_no_stop_gradient_moves_both_sides():
    img, txt, adv = _grads(-1.0)
    assert adv.grad.abs().sum() > 0 and img.grad.abs().sum() > 0


def test_hard_negative_weights_uniform_at_beta_zero_and_sharpen_with_beta():
    img, txt, _ = (t.detach() for t in _feats(b=8, seed=3))
    s = 4.0
    plain = positive_terms(img, txt, s)
    assert torch.allclose(positive_terms(img, txt, s, beta=0.0, tau_plus=0.0), plain)
    # β > 0 weights each negative by e^(β·logit)/mean: by Chebyshev's sum inequality the mass can only grow
    assert torch.all(positive_terms(img, txt, s, beta=1.0) >= plain - 1e-12)
    assert torch.any(positive_terms(img, txt, s, beta=1.0) > plain + 1e-6)


def test_adaptive_alpha_schedule():
    sched = AdaptiveStopGrad(stpg_degree=0.2, warmup_epochs=1, d_min=0.4)
    assert sched(1.0, epoch=0, n=2) == 0.2 and sched(0.6, epoch=0, n=2) == 0.2  # warm-up: mean distance 0.8
    assert sched(0.9, epoch=1, n=2) == 0.2  # farther than the warm-up mean: α unchanged
    assert sched(0.3, epoch=1, n=2) == 0.5  # closer than d_min
    assert sched(0.6, epoch=1, n=2) == pytest.approx((0.8 - 0.6) / (0.8 - 0.4) * (0.5 - 0.2) + 0.2)


def test_pgd_raises_the_loss_and_stays_in_the_ball():
    import open_clip

    from pipelines.train.eva_clip import CONFIG_DIR

    open_clip.add_model_config(CONFIG_DIR)
    torch.manual_seed(0)
    model = open_clip.create_model("tessera-tiny-clip", output_dict=True).eval()
    mean = torch.tensor(model.visual.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.image_std).view(1, 3, 1, 1)
    pixels = torch.rand(6, 3, 32, 32)
    images = (pixels - mean) / std
    texts = torch.randint(1, 1000, (6, 32))
    with torch.no_grad():
        out = model(images, texts)
    eps = 8 / 255
    adv = pgd_images(model, images, out["text_features"], out["logit_scale"], eps, 2 / 255, 5)
    loss = lambda im: 0.5 * (positive_terms(im, out["text_features"], out["logit_scale"]).mean()  # noqa: E731
                             + positive_terms(out["text_features"], im, out["logit_scale"]).mean())
    with torch.no_grad():
        assert loss(model.encode_image(adv, normalize=True)) > loss(out["image_features"]) + 1e-3
    adv_pixels = adv * std + mean
    assert (adv_pixels - pixels).abs().max() <= eps + 1e-5
    assert adv_pixels.min() >= -1e-5 and adv_pixels.max() <= 1 + 1e-5
    assert all(p.grad is None for p in model.parameters())


def test_eva_clip_job_with_a_infonce_loss_goes_down(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path / "cache"))
    ingest = make_ingest(tmp_path / "ingest", [samples("l", 8)])
    export_eva_clip([ingest], tmp_path / "eva", samples_per_shard=8, log=lambda *_: None)
    base = ["train", "eva-clip", str(tmp_path / "eva"), "--out", str(tmp_path / "logs"), "--name", "t"]
    assert main([*base, "--dry-run"]) == 0
    assert "-m pipelines.train.eva_clip --dataset-type" in capfd.readouterr().out  # plain CLIP stays the default
    assert main([*base, "--epochs", "8", "--loss", "a-infonce", "--pgd-steps", "2", "--stpg-adaptive", "4"]) == 0
    out = capfd.readouterr().out
    assert "-m pipelines.train.eva_clip_a_infonce" in out and "--pgd-steps 2" in out
    m = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert m["loss"] == "a-infonce" and m["steps"] == 8 and all(math.isfinite(x) for x in m["losses"])
    assert m["last_loss"] < 0.8 * m["first_loss"] and m["samples_per_s"] > 0
    assert " ip " in out and float(out.split(" ip ")[1].split()[0]) > 0  # the adversarial pair is in the loss
    assert (tmp_path / "logs" / "t" / "checkpoints" / "epoch_8.pt").exists()


def test_a_infonce_options_refused_with_clip_loss(tmp_path, capfd):
    (tmp_path / "eva").mkdir()
    assert main(["train", "eva-clip", str(tmp_path / "eva"), "--out", str(tmp_path / "logs"),
                 "--beta", "0.5", "--dry-run"]) == 2
    assert "--beta applies to --loss a-infonce only" in capfd.readouterr().err

