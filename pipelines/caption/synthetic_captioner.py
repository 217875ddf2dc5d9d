"""SyntheticCaptioner stage: encoded images in, `synthetic_caption` (cleaned to one line) out.

An image that does not decode becomes `captioner_status = image_error`; a failing batch is retried image by
image, so one bad row is a `generation_error` and never fails the batch. The image column is dropped on the way
out unless `keep_images` is set, so that image bytes do not travel further down the pipeline.
"""

from __future__ import annotations

import io
import logging
from typing import Literal

import pyarrow as pa
from pydantic import Field

from pipelines.caption.hygiene import STATUS_GENERATION_ERROR, STATUS_IMAGE_ERROR, STATUS_OK, clean_caption
from pipelines.core.stage import Stage, StageConfig

log = logging.getLogger(__name__)

SYNTHETIC_CAPTION = "synthetic_caption"
CAPTIONER_STATUS = "captioner_status"
CAPTIONER_TOKENS = "captioner_tokens"


class SyntheticCaptionerConfig(StageConfig):
    """Which image-to-text model captions, with which backend and generation settings."""

    model: str  # hub id or local path
    backend: Literal["auto", "transformers", "vllm"] = "transformers"  # auto: vLLM when usable and prompt is set
    image_column: str = "image"
    keep_images: bool = False
    num_beams: int = Field(3, ge=1)
    max_new_tokens: int = Field(30, ge=1)
    prompt: str | None = None
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: str = "auto"


def _decode(data: bytes | None):
    from PIL import Image

    if not data:
        raise ValueError("no image bytes")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class SyntheticCaptioner(Stage):
    """Write a synthetic caption for every decodable image of a batch."""

    config_cls = SyntheticCaptionerConfig
    name = "synthetic_captioner"

    def setup(self) -> None:
        """Load the captioning model for the configured backend."""
        from models.captioner import load_captioner
        from models.generation import CaptionerSettings

        c = self.config
        settings = CaptionerSettings(
            num_beams=c.num_beams, max_new_tokens=c.max_new_tokens, prompt=c.prompt, dtype=c.dtype, device=c.device
        )
        self.captioner = load_captioner(c.model, c.backend, settings)

    def _caption(self, images: list) -> list:
        try:
            return self.captioner.caption(images)
        except Exception as err:  # noqa: BLE001 - isolate the failing image below
            if len(images) == 1:
                log.warning("captioning failed for one image: %s", err)
                return [err]
        return [self._caption([im])[0] for im in images]

    def process(self, batch: pa.Table) -> pa.Table:
        """Add `synthetic_caption`, `captioner_status` and `captioner_tokens`."""
        n = batch.num_rows
        captions, status, tokens = [None] * n, [STATUS_IMAGE_ERROR] * n, [0] * n
        images, rows = [], []
        for i, data in enumerate(batch.column(self.config.image_column).to_pylist()):
            try:
                images.append(_decode(data))
                rows.append(i)
            except Exception as err:  # noqa: BLE001 - any undecodable image is a per-row status
                log.debug("row %d: image does not decode: %s", i, err)
        for i, result in zip(rows, self._caption(images) if images else []):
            if isinstance(result, Exception):
                status[i] = STATUS_GENERATION_ERROR
                continue
            # A generated caption, so it is cleaned here: it is stored, shown, and fed to the fuser as one line.
            captions[i], tokens[i], status[i] = clean_caption(result.text), result.num_tokens, STATUS_OK
        if not self.config.keep_images:
            batch = batch.drop_columns([self.config.image_column])
        batch = batch.append_column(SYNTHETIC_CAPTION, pa.array(captions, pa.string()))
        batch = batch.append_column(CAPTIONER_STATUS, pa.array(status, pa.string()))
        return batch.append_column(CAPTIONER_TOKENS, pa.array(tokens, pa.int32()))
