"""The two token layouts of one document (docs/documents.md, section 5): Emu3's image blocks at their positions, or
Emu1/Emu2's `[IMG] <image>*n_query [/IMG]` placeholders; text items merged with a per-source separator."""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np

from pipelines.documents import schema as D
from pipelines.tokenize.emu3_sequence import BOS, EOS, IGNORE, VISUAL_BASE, VOCAB_SIZE, image_ids

# OBELICS texts are paragraphs (its build joins them with "\n\n"); MMC4's text_list holds sentences of one page.
TEXT_SEPARATORS = {"obelics": "\n\n", "mmc4": " "}
DEFAULT_SEPARATOR = "\n\n"
IMG, IMG_END, IMG_QUERY = "[IMG]", "[/IMG]", "<image>"  # added in Emu1's order: [IMG], [/IMG], <image>
IMAGE_NOT_TOKENIZED = "image_not_tokenized"  # an image without a token grid; a drop reason when none is left


def separator_for(source: str | None) -> str:
    """The string that joins consecutive text items of a document from `source`."""
    return TEXT_SEPARATORS.get(source or "", DEFAULT_SEPARATOR)


def segments(items, text_sep: str) -> Iterator[str | dict]:
    """The document in order: merged text runs (str) and image items (dict); empty texts are skipped."""
    run: list[str] = []
    for item in items:
        if item.get("type") == D.IMAGE:
            if run:
                yield text_sep.join(run)
                run = []
            yield item
        elif item.get("text"):
            run.append(item["text"])
    if run:
        yield text_sep.join(run)


def document_ids(items, codes_by_key: Mapping[str, np.ndarray], tokenizer, *, text_sep: str = DEFAULT_SEPARATOR,
                 visual_loss_only: bool = False) -> tuple[list[int], list[int], dict]:
    """Emu3 layout of one document as (input_ids, labels, info); `codes_by_key`: image key -> (h, w) code grid.

    Images without a grid are left out and counted in info["image_not_tokenized"]; labels copy the ids, or keep
    only visual tokens with `visual_loss_only` (as `build_input_ids`)."""
    ids, keys, missing, n_text = [BOS], [], 0, 0
    for seg in segments(items, text_sep):
        if isinstance(seg, str):
            run = list(tokenizer.encode(seg, add_special_tokens=False))
            ids += run
            n_text += len(run)
        elif seg.get("key") in codes_by_key:
            ids += image_ids(codes_by_key[seg["key"]], tokenizer)
            keys.append(seg["key"])
        else:
            missing += 1
    ids.append(EOS)
    labels = [t if VISUAL_BASE <= t < VOCAB_SIZE else IGNORE for t in ids] if visual_loss_only else list(ids)
    return ids, labels, {"image_keys": keys, IMAGE_NOT_TOKENIZED: missing, "n_text_tokens": n_text}


def placeholder_token_ids(tokenizer) -> dict[str, int]:
    """Ids of `[IMG]`, `[/IMG]`, `<image>`, added to `tokenizer` as special tokens when missing (as Emu does)."""
    def lookup(token):
        found = tokenizer.convert_tokens_to_ids(token)
        return None if found is None or found == tokenizer.unk_token_id else found

    missing = [t for t in (IMG, IMG_END, IMG_QUERY) if lookup(t) is None]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)  # never split; the same call in transformers 4 and 5
    return {t: lookup(t) for t in (IMG, IMG_END, IMG_QUERY)}


def placeholder_ids(items, tokenizer, *, n_query: int = 64, text_sep: str = DEFAULT_SEPARATOR,
                    available: Mapping | set | None = None) -> tuple[list[int], list[str], dict]:
    """Emu1/Emu2 layout of one document as (input_ids, image_keys, info): each image `[IMG] <image>*n_query [/IMG]`.

    The tokenizer's own BOS/EOS (if it has them) open and close the document; with `available`, images whose key
    is not in it are left out and counted like `document_ids` does."""
    special = placeholder_token_ids(tokenizer)
    block = [special[IMG], *[special[IMG_QUERY]] * n_query, special[IMG_END]]
    ids = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    keys, missing, n_text = [], 0, 0
    for seg in segments(items, text_sep):
        if isinstance(seg, str):
            run = list(tokenizer.encode(seg, add_special_tokens=False))
            ids += run
            n_text += len(run)
        elif available is None or seg.get("key") in available:
            ids += block
            keys.append(seg.get("key"))
        else:
            missing += 1
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids, keys, {IMAGE_NOT_TOKENIZED: missing, "n_text_tokens": n_text}
