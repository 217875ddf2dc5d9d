"""Shared text-generation helpers of the captioner and fuser wrappers: settings, results, device and backend choice.

Both wrappers and the vLLM backend import from here, never from each other, so the model modules form no circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# CapsFusion's length rule: a fusion prompt holds at most 256 tokens (docs/reference.md section 4).
MAX_PROMPT_TOKENS = 256


class GenerationSettings(BaseModel):
    """Fuser generation options; the defaults are the CapsFusion reference settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    num_beams: int = Field(3, ge=1)
    max_new_tokens: int = Field(80, ge=1)
    do_sample: bool = False
    max_prompt_tokens: int = Field(MAX_PROMPT_TOKENS, ge=16)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    device: str = "auto"


class CaptionerSettings(BaseModel):
    """Generation options for the captioner."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    num_beams: int = Field(3, ge=1)
    max_new_tokens: int = Field(30, ge=1)
    prompt: str | None = None  # a text prefix for models that take one (e.g. "a picture of"); None: image only
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: str = "auto"


@dataclass(frozen=True)
class Generated:
    """One generated text and the number of new tokens behind it."""

    text: str
    num_tokens: int


def resolve_device_dtype(device: str, dtype: str):
    """`auto` means CUDA with bf16 when present, else CPU with fp32."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, getattr(torch, dtype)


def load_tokenizer(model_ref: str):
    """The model's tokenizer, set up for batched generation: left padding and a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_ref)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def vllm_installed() -> bool:
    """True when the optional `vllm` extra is importable."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def vllm_usable() -> bool:
    """True when `import vllm` works and a CUDA device is visible: what `auto` needs to choose vLLM."""
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        import vllm  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken vLLM install (ImportError, RuntimeError, ...) means: not usable
        return False
    return True


def resolve_backend(backend: str) -> str:
    """`auto` is vLLM when it is usable, else transformers; `transformers` and `vllm` are kept as asked."""
    if backend == "auto":
        return "vllm" if vllm_usable() else "transformers"
    if backend not in ("transformers", "vllm"):
        raise ValueError(f"unknown backend {backend!r}; use 'auto', 'transformers' or 'vllm'")
    return backend
