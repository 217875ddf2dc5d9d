"""CaptionFuser stage: CapsFusion over `raw_caption` + `synthetic_caption`, adding `fused_caption`.

A failing batch is retried row by row, so one bad row becomes `fuser_status = generation_error` and never fails
the batch. Rows without a synthetic caption are not sent to the model (`no_synthetic`). Both captions are only
stripped before they enter the prompt (the model was trained on that); `fusion_prompts` is the one place prompts
are built, shared with `tessera fuse --dry-run`.
"""

from __future__ import annotations

import logging
from typing import Literal

import pyarrow as pa
from pydantic import Field

from pipelines.caption.hygiene import STATUS_GENERATION_ERROR, STATUS_NO_SYNTHETIC, STATUS_OK
from pipelines.core.stage import Stage, StageConfig

log = logging.getLogger(__name__)

FUSED_CAPTION = "fused_caption"
FUSER_STATUS = "fuser_status"
PROMPT_TOKENS = "prompt_tokens"
GENERATED_TOKENS = "generated_tokens"


class CaptionFuserConfig(StageConfig):
    """Which LLM fuses, with which backend and generation settings (CapsFusion defaults)."""

    model: str  # hub id or local path
    backend: Literal["auto", "transformers", "vllm"] = "transformers"  # auto: vLLM when installed and on CUDA
    raw_column: str = "raw_caption"
    synthetic_column: str = "synthetic_caption"
    num_beams: int = Field(3, ge=1)
    max_new_tokens: int = Field(80, ge=1)
    do_sample: bool = False
    max_prompt_tokens: int = Field(256, ge=16)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: str = "auto"


def _set(table: pa.Table, name: str, values: list, type_: pa.DataType) -> pa.Table:
    col = pa.array(values, type_)
    idx = table.schema.get_field_index(name)
    return table.set_column(idx, name, col) if idx >= 0 else table.append_column(name, col)


def fusion_prompts(tokenizer, raws: list, synthetics: list, max_prompt_tokens: int) -> list[tuple[int, object]]:
    """(row index, FittedPrompt) for every row the model is asked about: rows with a non-blank synthetic caption.

    Captions are only stripped (None counts as empty); the raw caption is cut to fit `max_prompt_tokens`.
    """
    from models.caption_fuser import fit_prompt

    out = []
    for i, (raw, syn) in enumerate(zip(raws, synthetics)):
        raw, syn = (raw or "").strip(), (syn or "").strip()
        if syn:
            out.append((i, fit_prompt(tokenizer, raw, syn, max_prompt_tokens)))
    return out


class CaptionFuser(Stage):
    """Fuse raw alt-text with a synthetic caption using a CapsFusion LLM."""

    config_cls = CaptionFuserConfig
    name = "caption_fuser"

    def setup(self) -> None:
        """Load the tokenizer and the model for the configured backend."""
        from models.caption_fuser import load_fuser
        from models.generation import GenerationSettings

        c = self.config
        settings = GenerationSettings(
            num_beams=c.num_beams,
            max_new_tokens=c.max_new_tokens,
            do_sample=c.do_sample,
            max_prompt_tokens=c.max_prompt_tokens,
            dtype=c.dtype,
            device=c.device,
        )
        self.fuser = load_fuser(c.model, c.backend, settings)

    def _generate(self, prompts: list[str]) -> list:
        try:
            return self.fuser.generate(prompts)
        except Exception as err:  # noqa: BLE001 - isolate the failing row below
            if len(prompts) == 1:
                log.warning("caption fusion failed for one row: %s", err)
                return [err]
        return [self._generate([p])[0] for p in prompts]

    def process(self, batch: pa.Table) -> pa.Table:
        """Add `fused_caption`, `fuser_status`, `prompt_tokens` and `generated_tokens`."""
        c = self.config
        n = batch.num_rows
        fused, status, p_tokens, g_tokens = [None] * n, [STATUS_NO_SYNTHETIC] * n, [None] * n, [0] * n
        fitted = fusion_prompts(self.fuser.tokenizer, batch.column(c.raw_column).to_pylist(),
                                batch.column(c.synthetic_column).to_pylist(), c.max_prompt_tokens)
        todo = [i for i, _ in fitted]
        prompts = [f.prompt for _, f in fitted]
        for i, f in fitted:
            p_tokens[i] = f.num_tokens
        results = self._generate(prompts) if prompts else []
        for i, result in zip(todo, results):
            if isinstance(result, Exception):
                status[i] = STATUS_GENERATION_ERROR
                continue
            fused[i], g_tokens[i], status[i] = result.text, result.num_tokens, STATUS_OK
        batch = _set(batch, FUSED_CAPTION, fused, pa.string())
        batch = _set(batch, FUSER_STATUS, status, pa.string())
        batch = _set(batch, PROMPT_TOKENS, p_tokens, pa.int32())
        return _set(batch, GENERATED_TOKENS, g_tokens, pa.int32())
