"""Curated documents -> training token sequences, one parquet row per document, resumably per curated tar.

Layouts (`layouts.py`; docs/documents.md, section 5), text items merged with a per-source separator and each run
encoded once:
- `emu3`: `BOS run (SOV "h*w" SOT (row EOL)*h EOF EOV | run)* EOS`, images as their Emu3 token blocks;
- `emu2`: `[bos] run ([IMG] <image>*n_query [/IMG] | run)* [eos]`, placeholders for embedding-regression
  training (Emu1 n_query 32, Emu2 64); the trainer fills them from the pixels of `image_keys`.
Outputs: `OUT/sequences/NNNNN.parquet`, `OUT/sequences_dropped/NNNNN.parquet` (doc_id, drop_reason, value) and
`OUT/manifest.json`; every curated document lands in exactly one of the two shard files.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import write_json_atomic
from pipelines.core.shard_job import FILES_KEY, ShardJob
from pipelines.core.shard_reader import iter_members
from pipelines.documents import schema as D
from pipelines.documents.layouts import (IMAGE_NOT_TOKENIZED, document_ids, placeholder_ids, placeholder_token_ids,
                                         separator_for)
from pipelines.tokenize.emu3_sequence import BOS, PAD, token_files

SEQ_DIR, SEQ_DROPPED_DIR, MANIFEST, LAYOUTS = "sequences", "sequences_dropped", "manifest.json", ("emu3", "emu2")
# Drop reasons (GROUP BY keys).
NO_IMAGE, TOO_LONG, MALFORMED = "no_image", "too_long", "malformed_document"  # and layouts.IMAGE_NOT_TOKENIZED

SEQ_SCHEMA = pa.schema([(D.DOC_ID, pa.string()), ("source", pa.string()), ("input_ids", pa.list_(pa.int32())),
                        ("n_images", pa.int32()), ("n_text_tokens", pa.int32()), ("n_tokens", pa.int32()),
                        ("image_keys", pa.list_(pa.string()))])
DROP_SCHEMA = pa.schema([(D.DOC_ID, pa.string()), ("drop_reason", pa.string()), ("value", pa.int64())])


def read_documents(tar_path: Path) -> Iterator[dict]:
    """The document JSONs of one curated tar, in member order; an unreadable one yields {doc_id, error}."""
    try:
        for name, _, data in iter_members(tar_path, ("json",)):
            try:
                doc = json.loads(data)
            except ValueError as err:
                yield {D.DOC_ID: name, "error": str(err)}
                continue
            ok = isinstance(doc, dict) and isinstance(doc.get(D.ITEMS), list)
            yield ({**doc, D.DOC_ID: doc.get(D.DOC_ID) or name} if ok else {D.DOC_ID: name, "error": "no items"})
    except tarfile.TarError as err:
        raise TesseraUserError(f"{tar_path} is not a readable tar ({err})") from None


class TokenIndex:
    """Which token shard holds each image key; loads the code grids of one unit's keys on demand."""

    def __init__(self, tokens: Path) -> None:
        self.files = token_files(tokens)
        if not self.files:
            raise TesseraUserError(f"--tokens {tokens} holds no token shards (emu3_tokens/*.parquet from "
                                   f"`tessera tokenize`)")
        self.where: dict[str, int] = {}
        for n, f in enumerate(self.files):
            for key in pq.read_table(f, columns=["key"])["key"].to_pylist():
                self.where.setdefault(key, n)

    def __contains__(self, key) -> bool:
        return key in self.where

    def grids(self, keys) -> dict[str, np.ndarray]:
        """key -> (h, w) code grid for the given keys that have a token row."""
        by_file: dict[int, list[str]] = {}
        for k in {k for k in keys if k in self.where}:
            by_file.setdefault(self.where[k], []).append(k)
        out: dict[str, np.ndarray] = {}
        for n, wanted in by_file.items():
            rows = pq.read_table(self.files[n], columns=["key", "h", "w", "codes"],
                                 filters=[("key", "in", wanted)]).to_pylist()
            for r in rows:
                out.setdefault(r["key"], np.asarray(r["codes"], dtype=np.int64).reshape(r["h"], r["w"]))
        return out


def curated_tars(curated: Path) -> dict[str, Path]:
    """unit id -> finished curated document tar (verified by curation's shard job) of `CUR` or `CUR/documents`."""
    curated = Path(curated)
    if not curated.is_dir():
        raise TesseraUserError(f"CURATED {curated} is not a folder")
    root = curated.parent if curated.name == D.DOCS_DIR and not (curated / D.DOCS_DIR).is_dir() else curated
    tars = {u: root / D.DOCS_DIR / f"{u}.tar" for u in ShardJob(root, D.DOCS_DIR).finished()}
    if not tars:
        raise TesseraUserError(f"CURATED {curated} holds no finished document shards ({D.DOCS_DIR}/NNNNN.tar with "
                               f"their markers, written by document curation)")
    return tars


def load_text_tokenizer(ref: str):
    """The text tokenizer by reference (`tiny`, a folder or a hub id); a bad reference is one line."""
    from models.emu3_lm import load_tokenizer

    try:
        return load_tokenizer(ref)
    except (OSError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise TesseraUserError(f"--tokenizer {ref!r} is not a loadable tokenizer: {reason}") from None


def build_sequences(curated: Path, tokens: Path | None, out: Path, tokenizer_ref: str = "tiny", layout: str = "emu3",
                    n_query: int = 64, text_sep: str | None = None, max_length: int | None = None,
                    log=print) -> dict:
    """Write the sequences of every curated tar not done yet under `out`; returns the manifest.

    `tokens` (a `tessera tokenize` output) is required for emu3; for emu2 it is optional and, when given, keeps only
    the images that have a token row (the same images as emu3). `text_sep` None picks the separator per source."""
    if layout not in LAYOUTS:
        raise TesseraUserError(f"--layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if (max_length is not None and max_length < 1) or n_query < 1:
        raise TesseraUserError("--max-length and --n-query must be positive")
    tars = curated_tars(curated)
    if tokens is None and layout == "emu3":
        raise TesseraUserError("--tokens is required for --layout emu3 (the images' Emu3 token shards)")
    if tokens is not None and not Path(tokens).is_dir():
        raise TesseraUserError(f"--tokens {tokens} is not a folder")
    index = TokenIndex(Path(tokens)) if tokens is not None else None
    tokenizer = load_text_tokenizer(tokenizer_ref)
    if layout == "emu3" and len(tokenizer) > PAD and tokenizer.convert_tokens_to_ids("<|extra_203|>") != BOS:
        raise TesseraUserError(f"--tokenizer {tokenizer_ref!r} has text ids from {PAD} up, where Emu3 keeps its "
                               f"special and visual tokens; use Emu3's own tokenizer or a smaller one")
    settings = {"layout": layout, "tokenizer": tokenizer_ref, "n_query": n_query if layout == "emu2" else None,
                "text_sep": text_sep, "max_length": max_length, "with_tokens": tokens is not None}
    job = ShardJob(Path(out), SEQ_DIR)
    _check_resume(job, settings, tars, out)
    for unit in job.pending(tars):
        with job.unit(unit) as writer:
            if writer is None:  # a concurrent run finished it meanwhile
                continue
            stats = _build_unit(unit, tars[unit], tokenizer, index, settings, writer)
        log(f"documents {unit}: {stats['kept']}/{stats['documents']} kept, {stats['tokens']} tokens, "
            f"dropped {stats['dropped'] or 'none'}")
    return write_manifest(Path(out), Path(curated), tokens, settings, tokenizer)


def _check_resume(job: ShardJob, settings: dict, tars: dict[str, Path], out: Path) -> None:
    """Refuse to extend `out` made with other settings; forget units whose curated tar was rewritten or is gone."""
    for unit, marker in job.finished().items():
        if marker.get("settings") != settings:
            diff = [f"{k}={v!r} (now {settings.get(k)!r})" for k, v in marker.get("settings", {}).items()
                    if settings.get(k) != v]
            raise TesseraUserError(f"{out} holds sequences made with other settings: {', '.join(diff)}; "
                                   f"use another --out or the same settings")
        if unit in tars and _stamp(tars[unit]) == marker.get("curated_stamp"):
            continue
        job.marker_path(unit).unlink()  # marker first: a crash in between leaves an unfinished unit, never a stale one
        if unit not in tars:
            for rel in marker[FILES_KEY]:
                (job.root / rel).unlink(missing_ok=True)


def _stamp(path: Path) -> list[int]:
    """(size, mtime) of a curated tar: curation replaces a tar by renaming a new file over it."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _build_unit(unit: str, tar: Path, tokenizer, index: TokenIndex | None, settings: dict, writer) -> dict:
    """Lay out one curated tar's documents; commit its sequences and dropped files; return its stats."""
    docs = list(read_documents(tar))
    layout, max_length = settings["layout"], settings["max_length"]
    keys = (i.get("key") for d in docs for i in d.get(D.ITEMS, []) if i.get("type") == D.IMAGE)
    grids = index.grids(keys) if layout == "emu3" else {}
    rows, drops, missing_images = [], [], 0
    for doc in docs:
        if "error" in doc:
            drops.append((doc[D.DOC_ID], MALFORMED, None))
            continue
        items = doc[D.ITEMS]
        sep = settings["text_sep"] if settings["text_sep"] is not None else separator_for(doc.get("source"))
        if layout == "emu3":
            ids, _, info = document_ids(items, grids, tokenizer, text_sep=sep)
            keys = info["image_keys"]
        else:
            ids, keys, info = placeholder_ids(items, tokenizer, n_query=settings["n_query"], text_sep=sep,
                                              available=index)
        missing_images += info[IMAGE_NOT_TOKENIZED]
        if not keys:
            n_images = info[IMAGE_NOT_TOKENIZED]
            drops.append((doc[D.DOC_ID], IMAGE_NOT_TOKENIZED if n_images else NO_IMAGE, n_images))
        elif max_length is not None and len(ids) > max_length:
            drops.append((doc[D.DOC_ID], TOO_LONG, len(ids)))
        else:
            rows.append({D.DOC_ID: doc[D.DOC_ID], "source": doc.get("source"), "input_ids": ids,
                         "n_images": len(keys), "n_text_tokens": info["n_text_tokens"], "n_tokens": len(ids),
                         "image_keys": keys})
    kept = pa.Table.from_pylist(rows, schema=SEQ_SCHEMA)
    dropped = pa.Table.from_pylist([dict(zip(DROP_SCHEMA.names, d)) for d in drops], schema=DROP_SCHEMA)
    seq_rel, drop_rel = f"{SEQ_DIR}/{unit}.parquet", f"{SEQ_DROPPED_DIR}/{unit}.parquet"
    writer.parquet(kept, seq_rel)
    writer.parquet(dropped, drop_rel)
    stats = {"unit": unit, "settings": settings, "curated_stamp": _stamp(tar), "documents": len(docs),
             "kept": len(rows), "dropped": dict(Counter(d[1] for d in drops)),
             "images": sum(r["n_images"] for r in rows),
             IMAGE_NOT_TOKENIZED: missing_images, "tokens": sum(r["n_tokens"] for r in rows),
             "text_tokens": sum(r["n_text_tokens"] for r in rows)}
    return writer.commit(stats, expect={seq_rel: len(rows), drop_rel: len(drops)})


def write_manifest(out: Path, curated: Path, tokens: Path | None, settings: dict, tokenizer) -> dict:
    """Sum the per-unit stats into `OUT/manifest.json`."""
    stats = list(ShardJob(out, SEQ_DIR).finished().values())
    dropped = sum((Counter(s["dropped"]) for s in stats), Counter())
    special = placeholder_token_ids(tokenizer) if settings["layout"] == "emu2" else None
    manifest = {"curated": str(curated.resolve()), "token_shards": str(Path(tokens).resolve()) if tokens else None,
                **settings, "placeholder_ids": special, "units": [s["unit"] for s in stats], "dropped": dict(dropped),
                **{k: sum(s[k] for s in stats) for k in ("documents", "kept", "images", IMAGE_NOT_TOKENIZED,
                                                          "tokens", "text_tokens")}}
    write_json_atomic(manifest, out / MANIFEST)
    return manifest
