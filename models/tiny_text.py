"""Tiny random-init text models of real architectures, built locally for tests and the demo.

`tiny_llm_path()` gives a Llama causal LM and `tiny_captioner_path()` a VisionEncoderDecoder (ViT encoder, GPT-2
decoder) captioner. Both share a byte-level BPE tokenizer trained on the spot with the `tokenizers` library, and both
are saved with `save_pretrained` so that they load through exactly the code path a real checkpoint uses.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from models.cache import cache_dir

# Bump when the recipe changes so that stale cached builds are not reused.
TINY_VERSION = "v1"
TINY_LLM_NAME = f"tiny-llama-{TINY_VERSION}"
TINY_CAPTIONER_NAME = f"tiny-vit-gpt2-{TINY_VERSION}"
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]

# Enough English for a byte-level BPE to learn whole words of the fusion prompt and of typical captions.
_CORPUS = [
    "Please merge and refine the information from the two given sentences. Sentence 1 provides detailed "
    "real-world knowledge, yet it suffers from flaws in sentence structure and grammar. Sentence 2 exhibits "
    "nice sentence structure, but lacking in-depth real-world details and may contain false information. "
    "Please combine them into a new sentence, ensuring a well-structured sentence while retaining the detailed "
    "real-world information provided in Sentence 1. Avoid simply concatenating the sentences.",
    "Sentence 1: Sentence 2: New Sentence:",
    "a photo of a cat sitting on a wooden table next to a window",
    "a dog running on the beach at sunset with the ocean in the background",
    "a red car parked in front of a white house on a quiet street",
    "a group of people standing around a kitchen counter preparing food",
    "a close up of a plate of food with rice, vegetables and meat",
    "a man riding a bike down a city street in the rain",
    "a woman holding an umbrella in a park full of green trees",
    "an old black and white picture of a train station in London, 1920",
    "stock photo: mountain lake landscape with snow, blue sky and clouds",
    "buy cheap shoes online - free shipping - best price for sneakers 2024",
    "the cat cat cat dog dog dog bird bird bird fish fish fish tree tree tree",
]


def train_tokenizer():
    """A byte-level BPE tokenizer trained on a small built-in corpus, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    bos = tok.token_to_id("<s>")
    # Llama-style: one BOS in front of every encoded text, no EOS.
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def _save_generation_defaults(model, tokenizer) -> None:
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id


def build_tiny_llm(path: Path, seed: int = 0) -> Path:
    """Save a ~0.2M-parameter random-init `LlamaForCausalLM` and its tokenizer to `path`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    _save_generation_defaults(model, tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_captioner(path: Path, seed: int = 0) -> Path:
    """Save a random-init `VisionEncoderDecoderModel` (ViT 32x32 encoder, GPT-2 decoder) with its processors."""
    import torch
    from transformers import GPT2Config, ViTConfig, ViTImageProcessor, VisionEncoderDecoderConfig
    from transformers import VisionEncoderDecoderModel

    torch.manual_seed(seed)
    tokenizer = train_tokenizer()
    encoder = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    decoder = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    model = VisionEncoderDecoderModel(config=config)
    _save_generation_defaults(model, tokenizer)
    model.generation_config.decoder_start_token_id = tokenizer.bos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def _cached_build(name: str, builder) -> Path:
    target = cache_dir("models") / name
    if (target / "config.json").exists():
        return target
    # Build in a sibling temp folder and rename, so concurrent first uses never see half a checkpoint.
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        builder(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def tiny_llm_path() -> Path:
    """Local path of the tiny Llama fuser, built into the model cache on first use."""
    return _cached_build(TINY_LLM_NAME, build_tiny_llm)


def tiny_captioner_path() -> Path:
    """Local path of the tiny ViT+GPT-2 captioner, built into the model cache on first use."""
    return _cached_build(TINY_CAPTIONER_NAME, build_tiny_captioner)


def resolve_model(ref: str, kind: str) -> tuple[str, str]:
    """(what from_pretrained gets, the name recorded in the ledger) for `tiny`, a local path, or a hub id.

    `kind` is "llm" or "captioner" and picks which tiny model `tiny` means.
    """
    if ref == "tiny":
        path, name = (tiny_llm_path(), TINY_LLM_NAME) if kind == "llm" else (tiny_captioner_path(), TINY_CAPTIONER_NAME)
        return str(path), name
    if Path(ref).expanduser().exists():
        path = Path(ref).expanduser().resolve()
        return str(path), str(path)
    return ref, ref
