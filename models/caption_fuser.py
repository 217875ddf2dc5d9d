"""CapsFusion caption fusion: the byte-exact prompt, the 256-token rule, and a transformers generate backend.

The prompt and the generation defaults follow the CapsFusion reference (`BAAI/CapsFus-LLaMA`): raw completion
prompt, no chat template, beam search with 3 beams, at most 80 new tokens, left padding, only new tokens decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

PROMPT_HEAD = (
    "Please merge and refine the information from the two given sentences. Sentence 1 provides detailed real-world "
    "knowledge, yet it suffers from flaws in sentence structure and grammar. Sentence 2 exhibits nice sentence "
    "structure, but lacking in-depth real-world details and may contain false information. Please combine them "
    "into a new sentence, ensuring a well-structured sentence while retaining the detailed real-world information "
    "provided in Sentence 1. Avoid simply concatenating the sentences.\n\n"
)
MAX_PROMPT_TOKENS = 256


def build_prompt(raw: str, synthetic: str) -> str:
    """The CapsFusion prompt for one pair; both captions are stripped, nothing else is changed."""
    # Concatenation, not str.format: captions may hold braces.
    return PROMPT_HEAD + "Sentence 1: " + raw.strip() + "\nSentence 2: " + synthetic.strip() + "\nNew Sentence:"


@dataclass(frozen=True)
class FittedPrompt:
    """A prompt that fits the token limit, with its token count and how many raw tokens were cut."""

    prompt: str
    raw: str
    num_tokens: int
    raw_tokens_cut: int


def count_tokens(tokenizer, text: str) -> int:
    """Tokens the model sees for `text`, special tokens (BOS) included."""
    return len(tokenizer(text)["input_ids"])


def fit_prompt(tokenizer, raw: str, synthetic: str, max_tokens: int = MAX_PROMPT_TOKENS) -> FittedPrompt:
    """Apply the length rule: over `max_tokens`, shorten only the raw caption, from its end, by the excess.

    A prompt of exactly `max_tokens` is kept whole (the reference empties the raw caption there: an off-by-one we
    do not copy). Re-tokenising a shortened caption can merge differently, so the count is checked again.
    """
    raw, synthetic = raw.strip(), synthetic.strip()
    prompt = build_prompt(raw, synthetic)
    n = count_tokens(tokenizer, prompt)
    if n <= max_tokens:
        return FittedPrompt(prompt, raw, n, 0)
    raw_ids = tokenizer(raw, add_special_tokens=False)["input_ids"]
    original = len(raw_ids)
    while n > max_tokens and raw_ids:
        raw_ids = raw_ids[: max(0, len(raw_ids) - (n - max_tokens))]
        raw = tokenizer.decode(raw_ids, skip_special_tokens=True).strip()
        prompt = build_prompt(raw, synthetic)
        n = count_tokens(tokenizer, prompt)
    return FittedPrompt(prompt, raw, n, original - len(raw_ids))


class GenerationSettings(BaseModel):
    """Generation options; the defaults are the CapsFusion reference settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    num_beams: int = Field(3, ge=1)
    max_new_tokens: int = Field(80, ge=1)
    do_sample: bool = False
    max_prompt_tokens: int = Field(MAX_PROMPT_TOKENS, ge=16)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    device: str = "auto"


@dataclass(frozen=True)
class Generated:
    """One generated text and the number of new tokens behind it."""

    text: str
    num_tokens: int


class Fuser(Protocol):
    """What the CaptionFuser stage needs from a backend."""

    tokenizer: object

    def generate(self, prompts: list[str]) -> list[Generated]:
        """Complete each prompt; only the new text is returned."""


def resolve_device_dtype(device: str, dtype: str):
    """`auto` means CUDA with bf16 when present, else CPU with fp32."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, getattr(torch, dtype)


def decode_new_tokens(tokenizer, sequences, prompt_len: int) -> list[Generated]:
    """Decode only what follows the (left-padded) prompt, skipping special tokens; count non-pad new tokens."""
    new = sequences[:, prompt_len:]
    pad = tokenizer.pad_token_id
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    counts = (new != pad).sum(dim=1).tolist() if pad is not None else [new.shape[1]] * new.shape[0]
    return [Generated(t, int(c)) for t, c in zip(texts, counts)]


def load_tokenizer(model_ref: str):
    """The model's tokenizer, set up for batched generation: left padding and a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_ref)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


class TransformersFuser:
    """CapsFusion with `AutoModelForCausalLM.generate` (hub id or local path)."""

    def __init__(self, model_ref: str, settings: GenerationSettings | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.settings = settings or GenerationSettings()
        self.device, dtype = resolve_device_dtype(self.settings.device, self.settings.dtype)
        self.tokenizer = load_tokenizer(model_ref)
        self.model = AutoModelForCausalLM.from_pretrained(model_ref, dtype=dtype).to(self.device).eval()
        self._torch = torch

    def generate(self, prompts: list[str]) -> list[Generated]:
        """Batched generation with left padding; only the new tokens are decoded."""
        s = self.settings
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        with self._torch.inference_mode():
            out = self.model.generate(
                **inputs,
                num_beams=s.num_beams,
                max_new_tokens=s.max_new_tokens,
                do_sample=s.do_sample,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return decode_new_tokens(self.tokenizer, out.cpu(), inputs["input_ids"].shape[1])


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


def load_fuser(model_ref: str, backend: str = "transformers", settings: GenerationSettings | None = None) -> Fuser:
    """A fuser for `backend` ("auto", "transformers" or "vllm"; vLLM is imported only when chosen)."""
    backend = resolve_backend(backend)
    if backend == "vllm":
        from models.vllm_backend import VllmFuser

        return VllmFuser(model_ref, settings or GenerationSettings())
    return TransformersFuser(model_ref, settings)
