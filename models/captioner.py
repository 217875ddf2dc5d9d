"""Synthetic captions: an image-to-text model writing one caption per image, batched.

The transformers backend loads any vision-to-text checkpoint transformers knows (`AutoModelForImageTextToText`:
BLIP, BLIP-2, VisionEncoderDecoder, ...) by hub id or local path; the vLLM backend lives in `models.vllm_backend`.
"""

from __future__ import annotations

from typing import Protocol

from models.generation import CaptionerSettings, Generated, resolve_backend, resolve_device_dtype


class Captioner(Protocol):
    """What the SyntheticCaptioner stage needs from a backend."""

    def caption(self, images: list) -> list[Generated]:
        """One caption per PIL image, in order."""


def strip_prompt_ids(sequences, input_ids):
    """Drop the prompt from generated sequences when the model echoes it (decoder-only VLMs, BLIP with a prefix)."""
    if input_ids is None or sequences.shape[1] < input_ids.shape[1]:
        return sequences
    n = input_ids.shape[1]
    if bool((sequences[:, :n] == input_ids.to(sequences.device)).all()):
        return sequences[:, n:]
    return sequences


class TransformersCaptioner:
    """Captioning with `AutoModelForImageTextToText.generate`."""

    def __init__(self, model_ref: str, settings: CaptionerSettings | None = None) -> None:
        import torch
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor
        from transformers import AutoTokenizer

        self.settings = settings or CaptionerSettings()
        self.device, dtype = resolve_device_dtype(self.settings.device, self.settings.dtype)
        config = AutoConfig.from_pretrained(model_ref)
        if config.model_type == "vision-encoder-decoder":
            # These checkpoints ship an image processor and a tokenizer but no joint processor.
            self.image_processor = AutoImageProcessor.from_pretrained(model_ref)
            self.tokenizer = AutoTokenizer.from_pretrained(model_ref)
            self.processor = None
        else:
            self.processor = AutoProcessor.from_pretrained(model_ref)
            self.tokenizer = self.processor.tokenizer
            self.image_processor = None
        self.model = AutoModelForImageTextToText.from_pretrained(model_ref, dtype=dtype).to(self.device).eval()
        self._dtype = dtype
        self._torch = torch

    def _inputs(self, images: list) -> dict:
        prompt = self.settings.prompt
        if self.processor is None:
            inputs = dict(self.image_processor(images=images, return_tensors="pt"))
            if prompt:
                inputs["decoder_input_ids"] = self.tokenizer([prompt] * len(images), return_tensors="pt").input_ids
        elif prompt:
            inputs = dict(self.processor(images=images, text=[prompt] * len(images), return_tensors="pt", padding=True))
        else:
            inputs = dict(self.processor(images=images, return_tensors="pt"))
        return {
            k: (v.to(self.device, self._dtype) if v.is_floating_point() else v.to(self.device))
            for k, v in inputs.items()
        }

    def caption(self, images: list) -> list[Generated]:
        """Caption a batch of PIL images; only the new tokens are decoded."""
        s = self.settings
        inputs = self._inputs([im.convert("RGB") for im in images])
        pad = self.tokenizer.pad_token_id
        with self._torch.inference_mode():
            out = self.model.generate(
                **inputs, num_beams=s.num_beams, max_new_tokens=s.max_new_tokens, do_sample=False, pad_token_id=pad
            )
        prefix = inputs.get("input_ids", inputs.get("decoder_input_ids"))
        new = strip_prompt_ids(out.cpu(), None if prefix is None else prefix.cpu())
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        special = set(self.tokenizer.all_special_ids)
        counts = [sum(1 for t in row.tolist() if t not in special) for row in new]
        return [Generated(t, c) for t, c in zip(texts, counts)]


def load_captioner(model_ref: str, backend: str = "transformers", settings: CaptionerSettings | None = None) -> Captioner:
    """A captioner for `backend` ("auto", "transformers" or "vllm"; vLLM is imported only when chosen).

    `auto` picks vLLM only with a prompt: a vLLM multimodal model needs its own image prompt template.
    """
    settings = settings or CaptionerSettings()
    if backend == "auto" and not settings.prompt:
        backend = "transformers"
    backend = resolve_backend(backend)
    if backend == "vllm":
        from models.vllm_backend import VllmCaptioner

        return VllmCaptioner(model_ref, settings)
    return TransformersCaptioner(model_ref, settings)
