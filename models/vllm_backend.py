"""vLLM backends for the captioner and the fuser (the optional `vllm` extra; GPU only).

vLLM is imported inside the constructors, so this module imports fine where vLLM is not installed. Prompts are
built and fitted with the model's Hugging Face tokenizer and passed as token ids, so both backends send the very
same tokens, and only the new tokens are decoded.
"""

from __future__ import annotations

from models.generation import CaptionerSettings, Generated, GenerationSettings, load_tokenizer


def _import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError("the vllm backend needs the optional extra: pip install 'tessera[vllm]' (CUDA only)") from err
    return vllm


def _dtype(name: str) -> str:
    return "bfloat16" if name == "auto" else name


class VllmFuser:
    """CapsFusion with vLLM's offline `LLM`: beam search when `num_beams > 1`, greedy decoding otherwise."""

    def __init__(self, model_ref: str, settings: GenerationSettings) -> None:
        vllm = _import_vllm()
        self.settings = settings
        self.tokenizer = load_tokenizer(model_ref)
        self.llm = vllm.LLM(model=model_ref, dtype=_dtype(settings.dtype), tokenizer=model_ref)
        self._vllm = vllm

    def generate(self, prompts: list[str]) -> list[Generated]:
        """Complete each prompt; returns only the new text and its token count."""
        s = self.settings
        ids = [self.tokenizer(p)["input_ids"] for p in prompts]
        token_prompts = [{"prompt_token_ids": x} for x in ids]
        if s.num_beams > 1:
            from vllm.sampling_params import BeamSearchParams

            outs = self.llm.beam_search(token_prompts, BeamSearchParams(beam_width=s.num_beams, max_tokens=s.max_new_tokens))
            results = []
            for prompt_ids, out in zip(ids, outs):
                new = out.sequences[0].tokens[len(prompt_ids):]
                new = [t for t in new if t != self.tokenizer.pad_token_id]
                results.append(Generated(self.tokenizer.decode(new, skip_special_tokens=True), len(new)))
            return results
        params = self._vllm.SamplingParams(
            temperature=1.0 if s.do_sample else 0.0, max_tokens=s.max_new_tokens, skip_special_tokens=True
        )
        outs = self.llm.generate(token_prompts, params, use_tqdm=False)
        return [Generated(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outs]


class VllmCaptioner:
    """Captioning with a vLLM multimodal model; `settings.prompt` must be the model's own image prompt template."""

    def __init__(self, model_ref: str, settings: CaptionerSettings) -> None:
        vllm = _import_vllm()
        if not settings.prompt:
            raise ValueError("the vllm captioner needs a prompt template with the model's image placeholder")
        self.settings = settings
        self.llm = vllm.LLM(model=model_ref, dtype=_dtype(settings.dtype), limit_mm_per_prompt={"image": 1})
        self._params = vllm.SamplingParams(temperature=0.0, max_tokens=settings.max_new_tokens, skip_special_tokens=True)

    def caption(self, images: list) -> list[Generated]:
        """One caption per PIL image (greedy decoding)."""
        requests = [{"prompt": self.settings.prompt, "multi_modal_data": {"image": im.convert("RGB")}} for im in images]
        outs = self.llm.generate(requests, self._params, use_tqdm=False)
        return [Generated(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outs]
