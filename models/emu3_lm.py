"""Emu3 next-token model: transformers' `Emu3ForCausalLM` over the full Emu3 vocabulary (184622 ids).

`tiny` builds (once) a random-init model with hidden size 32 and a small byte-level BPE text tokenizer trained on
the spot, both saved into the local cache and loaded back with `from_pretrained` like real checkpoints. Any other
reference is a local folder or hub id of an Emu3 text model / tokenizer (e.g. `BAAI/Emu3-Gen-hf`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.cache import cache_dir
from models.vision_tokenizer import build_atomically

TINY = "tiny"
EMU3_VOCAB_SIZE = 184622
TINY_LM_CONFIG = dict(
    vocab_size=EMU3_VOCAB_SIZE,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    attention_dropout=0.0,
)
_CORPUS = [
    "a photo of a cat sitting on a red sofa", "a dog running on the beach at sunset", "0123456789 * x",
    "a painting of mountains and a lake", "a close up of a bowl of fruit on a wooden table",
    "city street at night with cars and neon lights", "a bird on a branch", "1*1 2*2 4*4 8*8 16*16 32*64 64*64",
]


def tiny_tokenizer_dir() -> Path:
    """Build (once) a byte-level BPE tokenizer (vocab 400, ids far below Emu3's special ids); return its folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = cache_dir("emu3_lm", TINY, "tokenizer")
    if (path / "tokenizer_config.json").exists():
        return path
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"])
    tok.train_from_iterator(_CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    build_atomically(path, fast.save_pretrained, marker="tokenizer_config.json")
    return path


def tiny_lm_dir() -> Path:
    """Build (once) the tiny random-init `Emu3ForCausalLM` checkpoint and return its folder."""
    from transformers import Emu3ForCausalLM, Emu3TextConfig

    path = cache_dir("emu3_lm", TINY, "model")
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        build_atomically(path, Emu3ForCausalLM(Emu3TextConfig(**TINY_LM_CONFIG)).save_pretrained)
    return path


def load_tokenizer(ref: str = TINY):
    """The text tokenizer (used for captions and the `h*w` grid text)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir()) if ref == TINY else ref)


def load_lm(ref: str = TINY, dtype: str = "float32"):
    """`Emu3ForCausalLM` from `tiny`, a local folder, or a hub id."""
    from transformers import Emu3ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return Emu3ForCausalLM.from_pretrained(str(tiny_lm_dir()) if ref == TINY else ref, dtype=getattr(torch, dtype))
