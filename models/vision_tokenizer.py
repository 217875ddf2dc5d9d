"""Emu3 vision tokenizer: transformers' native `Emu3VQVAE` plus Emu3's own image preprocessing.

A model is named by a reference: `tiny` (a random-init instance of the real architecture, built once into the local
cache and then loaded like any checkpoint), a local folder, or a hub id such as `BAAI/Emu3-Gen-hf`.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.cache import cache_dir
from models.emu3_preprocessing import MAX_AREA, MAX_ASPECT_RATIO, MIN_AREA, SPATIAL_FACTOR, TARGET_AREA

TINY = "tiny"
# docs/reference.md section 5, with four levels instead of two so the spatial factor is 8 as in the real model, and the
# real temporal factor 4 so the tiny model exercises the still-image repeat.
TINY_CONFIG = dict(
    codebook_size=20,
    temporal_downsample_factor=4,
    base_channels=32,
    channel_multiplier=[1, 1, 1, 1],
    hidden_size=32,
)
# Drop reasons (stable GROUP BY keys).
REASON_ASPECT = "aspect_ratio_too_large"
REASON_TOO_SMALL = "image_too_small"
REASON_DECODE = "image_decode_failed"


@dataclass(frozen=True)
class Preprocessing:
    """Emu3's offline preparation: rescale to a target area, then the processor's multiple-of-factor resize."""

    target_area: int = TARGET_AREA
    min_area: int = MIN_AREA
    max_area: int = MAX_AREA
    max_aspect_ratio: float = MAX_ASPECT_RATIO
    factor: int = SPATIAL_FACTOR


def smart_size(height: int, width: int, p: Preprocessing) -> tuple[int, int]:
    """Emu3 processor size: sides rounded to `factor`, area clamped to [min_area, max_area] keeping aspect."""
    f = p.factor
    h_bar, w_bar = round(height / f) * f, round(width / f) * f
    if h_bar * w_bar > p.max_area:
        beta = math.sqrt(height * width / p.max_area)
        h_bar, w_bar = math.floor(height / beta / f) * f, math.floor(width / beta / f) * f
    elif h_bar * w_bar < p.min_area:
        beta = math.sqrt(p.min_area / (height * width))
        h_bar, w_bar = math.ceil(height * beta / f) * f, math.ceil(width * beta / f) * f
    return h_bar, w_bar


def preprocess(image: Image.Image, p: Preprocessing) -> tuple[torch.Tensor | None, str | None]:
    """One image -> (3, H, W) float tensor in [-1, 1], or (None, drop_reason)."""
    image = image.convert("RGB")
    w, h = image.size
    if min(w, h) < 1 or max(w, h) / min(w, h) > p.max_aspect_ratio:
        return None, REASON_ASPECT
    ratio = math.sqrt(p.target_area / (w * h))
    tw, th = max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
    if (tw, th) != (w, h):
        image = image.resize((tw, th), Image.Resampling.BICUBIC)
    if min(tw, th) < p.factor:
        return None, REASON_TOO_SMALL
    fh, fw = smart_size(th, tw, p)
    if (fw, fh) != (tw, th):
        image = image.resize((fw, fh), Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return (pixels.float() / 255.0 - 0.5) / 0.5, None


def tiny_checkpoint() -> Path:
    """Build (once) and return the local folder of the tiny random-init Emu3VQVAE."""
    from transformers import Emu3VQVAE, Emu3VQVAEConfig

    path = cache_dir("emu3_vq", TINY)
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        build_atomically(path, Emu3VQVAE(Emu3VQVAEConfig(**TINY_CONFIG)).save_pretrained)
    return path


def build_atomically(path: Path, save, marker: str = "config.json") -> None:
    """Run `save(tmp_dir)` and rename it to `path`, so concurrent workers never load a half-written checkpoint."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save(tmp)
        os.rename(tmp, path)  # replaces the empty folder cache_dir() made; fails if another worker won the race
    except OSError:
        if not (path / marker).exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve(ref: str) -> str:
    """The `from_pretrained` argument for a model reference (`tiny`, a local folder, or a hub id)."""
    return str(tiny_checkpoint()) if ref == TINY else ref


def _image_tokens(output) -> list[torch.Tensor]:
    """transformers 5.x returns an output object with `.image_tokens`; 4.48-4.57 return the list itself."""
    return list(output.image_tokens) if hasattr(output, "image_tokens") else list(output)


class Emu3VisionTokenizer:
    """Encode images to Emu3 code grids and decode them back; `dedupe_still=True` is the fast exact path."""

    def __init__(self, ref: str = TINY, device: str | None = None, dtype: str = "float32",
                 dedupe_still: bool = True) -> None:
        from transformers import Emu3VQVAE

        self.ref = ref
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = Emu3VQVAE.from_pretrained(resolve(ref), dtype=getattr(torch, dtype)).to(self.device).eval()
        self.factor = int(self.model.vision_spatial_factor)
        self.dedupe_still = dedupe_still

    @property
    def tokenizer_id(self) -> str:
        """The id recorded next to every code grid."""
        return f"emu3_vq:{self.ref}"

    def _spatial(self, px: torch.Tensor) -> torch.Tensor:
        """The encoder's per-frame 2-D part (Emu3VQVAEEncoder.forward up to conv_out): (N, 3, H, W) -> (N, C, h, w)."""
        enc = self.model.encoder
        h = enc.conv_in(px)
        h = enc.middle_block(enc.down_block(h))
        h = enc.norm_out(h)
        h = h * torch.sigmoid(h)
        return enc.conv_out(h)

    def _temporal(self, h: torch.Tensor) -> torch.Tensor:
        """The encoder's 3-D part, then quant_conv: (B, C, T, h, w) -> latents (B, T', C, h, w)."""
        m = self.model
        for conv in m.encoder.time_conv:
            h = conv(h)
            h = h * torch.sigmoid(h)
        for layer in m.encoder.time_res_stack:
            h = layer(h)
        return m.quant_conv(h).permute(0, 2, 1, 3, 4)

    @torch.inference_mode()
    def latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pre-quantization latents (B, T', C, h, w) of still images (B, 3, H, W).

        A still image is repeated `temporal_downsample_factor` times before encoding, and the encoder's spatial part
        works on each frame alone: run it once per image and repeat its output instead of its input.
        """
        m = self.model
        px = pixel_values.to(self.device, m.dtype)
        t = m.config.temporal_downsample_factor
        if not self.dedupe_still:
            hidden = m.encoder(px.unsqueeze(1).repeat(1, t, 1, 1, 1))
            return m.quant_conv(hidden.permute(0, 2, 1, 3, 4)).permute(0, 2, 1, 3, 4)
        return self._temporal(self._spatial(px).unsqueeze(2).repeat(1, 1, t, 1, 1))

    @torch.inference_mode()
    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Code grids (B, H/factor, W/factor) for a batch of same-size images in [-1, 1]."""
        codes = self.model.quantize(self.latents(pixel_values))
        return codes[:, 0]

    @torch.inference_mode()
    def encode_reference(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The plain transformers path (`Emu3VQVAE.encode`), kept for agreement checks and benchmarks."""
        b, _, hh, ww = pixel_values.shape
        sizes = torch.tensor([[hh, ww]] * b)
        out = self.model.encode(pixel_values.to(self.device, self.model.dtype), sizes)
        return torch.stack(_image_tokens(out))

    @torch.inference_mode()
    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """Code grids (B, T/4, H/factor, W/factor) for clips (B, T, 3, H, W) in [-1, 1], T a multiple of 4.

        The T frames of a clip are one causal sequence for the temporal convolutions, as in `Emu3VQVAE.encode`;
        Emu3's own video code (autoencode.py) cuts a video into independent 4-frame clips, i.e. B groups of T=4.
        Not `Emu3VQVAE.encode`: its final crop `[:H/8, :W/8]` is written for (h, w) grids and, on a video's
        (T', h, w) codes, cuts the time axis and the rows instead (transformers 4.48-5.x). Same math, no crop.
        """
        m = self.model
        b, t, c, hh, ww = frames.shape
        factor = m.config.temporal_downsample_factor
        if t % factor or t == 0:
            raise ValueError(f"a clip needs a positive multiple of {factor} frames, got {t}")
        if hh % self.factor or ww % self.factor:
            raise ValueError(f"frame sides must be multiples of {self.factor}, got {hh}x{ww}")
        spatial = self._spatial(frames.to(self.device, m.dtype).reshape(b * t, c, hh, ww))
        hidden = spatial.reshape(b, t, *spatial.shape[1:]).permute(0, 2, 1, 3, 4)  # b c t h w
        return m.quantize(self._temporal(hidden))

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] from code grids (B, h, w)."""
        return self.model.decode(codes.to(self.device, torch.long)).float().clamp(-1, 1).cpu()


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [-1, 1] as a PIL image."""
    arr = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr)
