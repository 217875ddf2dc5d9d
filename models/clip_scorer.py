"""Image-text scoring with open_clip: cosine of L2-normalised image and text embeddings.

Images are preprocessed the way open_clip's own transform for the model does it (resize shortest side, centre crop,
normalise). On CPU that is open_clip's PIL transform; on CUDA JPEGs are decoded with nvjpeg and resized on the GPU
with the same size, interpolation and mean/std, so the stage is not bound by PIL decode.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from models.clip_registry import ClipSpec, resolve


@dataclass
class ClipScores:
    """Scores (float32, NaN where an image could not be decoded), optional fp16 image embeddings, errors per row."""

    scores: np.ndarray
    embeddings: np.ndarray | None
    errors: list[str | None]


class ClipScorer:
    """An open_clip model with its preprocessing and tokenizer, built from a spec (see models.clip_registry)."""

    def __init__(self, spec: str | ClipSpec, device: str | None = None, precision: str = "fp32") -> None:
        import open_clip
        import torch

        self.spec = resolve(spec) if isinstance(spec, str) else spec
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = precision
        model, _, preprocess = open_clip.create_model_and_transforms(
            self.spec.model_name, pretrained=self.spec.pretrained, device=self.device
        )
        self.model = model.eval()
        self.preprocess = preprocess
        self.preprocess_cfg = dict(model.visual.preprocess_cfg)
        self.tokenizer = open_clip.get_tokenizer(self.spec.model_name)

    @property
    def model_id(self) -> str:
        """The id recorded with every score this scorer produces."""
        return self.spec.model_id

    def _autocast(self):
        import torch

        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        if dtype is None:
            return torch.autocast(self.device.split(":")[0], enabled=False)
        return torch.autocast(self.device.split(":")[0], dtype=dtype)

    def pil_batch(self, images: list[bytes]) -> tuple["torch.Tensor", list[str | None]]:  # noqa: F821
        """Decode and preprocess encoded images with PIL; undecodable ones become zeros plus an error string."""
        import torch
        from PIL import Image

        size = self.preprocess_cfg["size"]
        h, w = (size, size) if isinstance(size, int) else size
        tensors, errors = [], []
        for data in images:
            try:
                with Image.open(io.BytesIO(data)) as img:
                    tensors.append(self.preprocess(img.convert("RGB")))
                errors.append(None)
            except Exception as err:  # any decoder failure is a per-sample outcome, not a crash
                tensors.append(torch.zeros(3, h, w))
                errors.append(f"decode_error: {type(err).__name__}")
        return torch.stack(tensors) if tensors else torch.zeros(0, 3, h, w), errors

    def gpu_batch(self, images: list[bytes]) -> tuple["torch.Tensor", list[str | None]]:  # noqa: F821
        """Decode JPEGs with nvjpeg on the GPU and resize/crop/normalise there; others fall back to PIL."""
        from models.gpu_decode import gpu_preprocess

        return gpu_preprocess(images, self.preprocess_cfg, self.device, self.pil_batch)

    def embed_images(self, pixels) -> "torch.Tensor":  # noqa: F821
        """L2-normalised image embeddings (float32) for a preprocessed batch."""
        import torch

        with torch.inference_mode(), self._autocast():
            emb = self.model.encode_image(pixels.to(self.device, non_blocking=True))
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def embed_texts(self, texts: list[str]) -> "torch.Tensor":  # noqa: F821
        """L2-normalised text embeddings (float32)."""
        import torch

        tokens = self.tokenizer([t or "" for t in texts]).to(self.device)
        with torch.inference_mode(), self._autocast():
            emb = self.model.encode_text(tokens)
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def score(self, images: list[bytes], texts: list[str], with_embeddings: bool = False,
              gpu_decode: bool | None = None) -> ClipScores:
        """Cosine image-text similarity per pair; NaN and an error where an image does not decode."""
        use_gpu = self.device.startswith("cuda") if gpu_decode is None else gpu_decode
        pixels, errors = (self.gpu_batch if use_gpu else self.pil_batch)(images)
        if not images:
            return ClipScores(np.zeros(0, np.float32), None, [])
        img = self.embed_images(pixels)
        txt = self.embed_texts(texts)
        scores = (img * txt).sum(dim=-1).clamp(-1.0, 1.0).cpu().numpy().astype(np.float32)
        scores[[e is not None for e in errors]] = np.nan
        emb = img.half().cpu().numpy() if with_embeddings else None
        return ClipScores(scores, emb, errors)
