"""CapsFusion prompt bytes, the 256-token rule with a real tokenizer, and only-new-token decoding."""

from __future__ import annotations

import pytest
import torch
from caption_fixture import tiny_cache, tiny_llm  # noqa: F401

from models.caption_fuser import TransformersFuser, build_prompt, count_tokens, decode_new_tokens, fit_prompt
from models.generation import GenerationSettings, load_tokenizer

# Typed from docs/reference.md section 4: two \n after the paragraph, one after each sentence, nothing after the colon.
REFERENCE_PROMPT = (
    "Please merge and refine the information from the two given sentences. Sentence 1 provides detailed real-world "
    "knowledge, yet it suffers from flaws in sentence structure and grammar. Sentence 2 exhibits nice sentence "
    "structure, but lacking in-depth real-world details and may contain false information. Please combine them into "
    "a new sentence, ensuring a well-structured sentence while retaining the detailed real-world information "
    "provided in Sentence 1. Avoid simply concatenating the sentences.\n\nSentence 1: {raw}\nSentence 2: "
    "{synthetic}\nNew Sentence:"
)


def test_prompt_is_byte_exact():
    got = build_prompt("  Buy {cheap} shoes 2024 \n", "\ta pair of red shoes ")
    want = REFERENCE_PROMPT.replace("{raw}", "Buy {cheap} shoes 2024").replace("{synthetic}", "a pair of red shoes")
    assert got.encode("utf-8") == want.encode("utf-8")
    assert got.endswith("\nNew Sentence:") and not got.endswith(" ")
    assert got.count("\n\n") == 1 and got.count("\n") == 4


@pytest.fixture(scope="module")
def tokenizer(tiny_llm):
    return load_tokenizer(tiny_llm)


def _raw_with_total(tokenizer, synthetic: str, total: int) -> str:
    """A raw caption of repeated words whose prompt is exactly `total` tokens."""
    for n in range(1, 400):
        raw = " ".join(["cat"] * n)
        if count_tokens(tokenizer, build_prompt(raw, synthetic)) == total:
            return raw
    raise AssertionError(f"no raw caption gives {total} tokens")


def test_exactly_256_tokens_keeps_raw_intact(tokenizer):
    raw = _raw_with_total(tokenizer, "a dog", 256)
    fitted = fit_prompt(tokenizer, raw, "a dog")
    assert fitted.raw == raw and fitted.raw_tokens_cut == 0 and fitted.num_tokens == 256
    assert fitted.prompt == build_prompt(raw, "a dog")


def test_257_tokens_shortens_raw_from_its_end_by_one(tokenizer):
    raw = _raw_with_total(tokenizer, "a dog", 257)
    fitted = fit_prompt(tokenizer, raw, "a dog")
    assert fitted.raw_tokens_cut == 1 and fitted.num_tokens == 256
    assert fitted.raw == raw.rsplit(" ", 1)[0]
    assert "Sentence 2: a dog\nNew Sentence:" in fitted.prompt


def test_long_prompt_cuts_only_raw_and_fits(tokenizer):
    raw = "london train station " * 80
    fitted = fit_prompt(tokenizer, raw, "an old picture of a train station")
    assert fitted.num_tokens <= 256 and count_tokens(tokenizer, fitted.prompt) == fitted.num_tokens
    assert raw.strip().startswith(fitted.raw) and 0 < len(fitted.raw) < len(raw.strip())
    assert fitted.prompt.endswith("Sentence 2: an old picture of a train station\nNew Sentence:")


def test_synthetic_alone_over_limit_empties_raw_only(tokenizer):
    synthetic = "a dog running on the beach " * 60
    fitted = fit_prompt(tokenizer, "some raw text", synthetic)
    assert fitted.raw == "" and synthetic.strip() in fitted.prompt


def test_configurable_limit(tokenizer):
    raw = "mountain lake landscape with snow"
    base = count_tokens(tokenizer, build_prompt(raw, "a lake"))
    fitted = fit_prompt(tokenizer, raw, "a lake", max_tokens=base - 2)
    assert fitted.num_tokens <= base - 2 and fitted.raw_tokens_cut >= 2


def test_decode_new_tokens_skips_prompt_padding_and_specials(tokenizer):
    new_ids = tokenizer("a red car", add_special_tokens=False)["input_ids"]
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    prompt = tokenizer("Sentence 1: x", return_tensors="pt")["input_ids"][0].tolist()
    seq = torch.tensor([[pad, pad] + prompt + new_ids + [eos, pad]])
    (got,) = decode_new_tokens(tokenizer, seq, prompt_len=len(prompt) + 2)
    assert got.text == "a red car" and got.num_tokens == len(new_ids) + 1


def test_fuser_returns_only_new_tokens_like_plain_generate(tiny_llm):
    settings = GenerationSettings(num_beams=1, max_new_tokens=6)
    fuser = TransformersFuser(tiny_llm, settings)
    prompts = [build_prompt("london 1920", "an old train station"), build_prompt("cheap RED shoes for sale", "shoes")]
    for prompt in prompts:
        ids = fuser.tokenizer(prompt, return_tensors="pt")
        out = fuser.model.generate(**ids, max_new_tokens=6, do_sample=False, num_beams=1)
        want = fuser.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        (got,) = fuser.generate([prompt])
        assert got.text == want and "New Sentence" not in got.text
    batched = fuser.generate(prompts)  # left padding must not change the result
    assert [g.text for g in batched] == [fuser.generate([p])[0].text for p in prompts]


def test_reference_generation_defaults():
    s = GenerationSettings()
    assert (s.num_beams, s.max_new_tokens, s.do_sample, s.max_prompt_tokens) == (3, 80, False, 256)
    from models.generation import resolve_device_dtype

    assert resolve_device_dtype("cpu", "auto") == ("cpu", torch.float32)
    assert resolve_device_dtype("cuda:0", "auto")[1] == torch.bfloat16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fuser_on_gpu_uses_bf16_and_decodes_new_tokens(tiny_llm):
    fuser = TransformersFuser(tiny_llm, GenerationSettings(max_new_tokens=8))
    assert fuser.model.dtype == torch.bfloat16 and fuser.device == "cuda"
    out = fuser.generate([build_prompt("red car 2024", "a red car"), build_prompt("old station", "a station")])
    assert len(out) == 2 and all(0 < g.num_tokens <= 8 and "New Sentence" not in g.text for g in out)


def test_auto_backend_is_vllm_only_when_it_imports_on_cuda():
    import importlib.util

    from models.generation import resolve_backend

    usable = torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
    assert resolve_backend("auto") == ("vllm" if usable else "transformers")
    assert resolve_backend("transformers") == "transformers" and resolve_backend("vllm") == "vllm"
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("spark")
