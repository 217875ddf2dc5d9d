"""CapsFusion caption fusion: the byte-exact prompt, the 256-token rule, and a transformers generate backend.

The prompt and the generation defaults follow the CapsFusion reference (`BAAI/CapsFus-LLaMA`): raw completion
prompt, no chat template, beam search with 3 beams, at most 80 new tokens, left padding, only new tokens decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from models.generation import (
    MAX_PROMPT_TOKENS,
    Generated,
    GenerationSettings,
    load_tokenizer,
    resolve_backend,
    resolve_device_dtype,
)

PROMPT_HEAD = (
    "Please merge and refine the information from the two given sentences. Sentence 1 provides detailed real-world "
    "knowledge, yet it suffers from flaws in sentence structure and grammar. Sentence 2 exhibits nice sentence "
    "structure, but lacking in-depth real-world details and may contain false information. Please combine them "
    "into a new sentence, ensuring a well-structured sentence while retaining the detailed real-world information "
    "provided in Sentence 1. Avoid simply concatenating the sentences.\n\n"
)


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


class Fuser(Protocol):
    """What the CaptionFuser stage needs from a backend."""

    tokenizer: object

    def generate(self, prompts: list[str]) -> list[Generated]:
        """Complete each prompt; only the new text is returned."""


def decode_new_tokens(tokenizer, sequences, prompt_len: int) -> list[Generated]:
    """Decode only what follows the (left-padded) prompt, skipping special tokens; count non-pad new tokens."""
    new = sequences[:, prompt_len:]
    pad = tokenizer.pad_token_id
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    counts = (new != pad).sum(dim=1).tolist() if pad is not None else [new.shape[1]] * new.shape[0]
    return [Generated(t, int(c)) for t, c in zip(texts, counts)]


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


def load_fuser(model_ref: str, backend: str = "transformers", settings: GenerationSettings | None = None) -> Fuser:
    """A fuser for `backend` ("auto", "transformers" or "vllm"; vLLM is imported only when chosen)."""
    backend = resolve_backend(backend)
    if backend == "vllm":
        from models.vllm_backend import VllmFuser

        return VllmFuser(model_ref, settings or GenerationSettings())
    return TransformersFuser(model_ref, settings)
