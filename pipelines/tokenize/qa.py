"""QA for token shards: decode a sample of code grids back to images, next to the preprocessed originals, in one PNG."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from pipelines.core.errors import TesseraUserError
from pipelines.tokenize.image_tokenizer import CODES, GRID_H, GRID_W
from pipelines.core.shard_reader import IMAGE_EXTS, read_members
from pipelines.core.shard_io import read_json
from pipelines.tokenize.shards import MANIFEST, TOKENS_DIR


def _sample_rows(out: Path, n: int, seed: int) -> list[tuple[str, dict]]:
    rows = []
    for f in sorted((out / TOKENS_DIR).glob("*.parquet")):
        shard = f.name.split(".")[0]
        rows += [(shard, r) for r in pq.read_table(f, columns=["key", GRID_H, GRID_W, CODES]).to_pylist()]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def render_qa(out: Path, n: int = 8, png: Path = Path("qa.png"), seed: int = 0) -> Path:
    """Write a PNG with one row per sampled image: original (as preprocessed) | reconstruction from its codes."""
    import torch

    from models.vision_tokenizer import Emu3VisionTokenizer, Preprocessing, preprocess, to_pil

    out = Path(out)
    manifest = read_json(out / MANIFEST)
    if manifest is None:
        raise TesseraUserError(f"{out} has no {MANIFEST}: run `tessera tokenize` first")
    rows = _sample_rows(out, n, seed)
    if not rows:
        raise TesseraUserError(f"{out}/{TOKENS_DIR} holds no tokenized samples")
    cfg = manifest["config"]
    tok = Emu3VisionTokenizer(cfg["vq_model"], device=cfg.get("device"))
    prep = Preprocessing(cfg["target_area"], cfg["min_area"], cfg["max_area"], cfg["max_aspect_ratio"], tok.factor)
    tars: dict[str, dict] = {}
    pairs = []
    for shard, r in rows:
        grid = torch.tensor(r[CODES], dtype=torch.long).view(1, r[GRID_H], r[GRID_W])
        recon = to_pil(tok.decode(grid)[0])
        tar = Path(manifest["src"]) / "shards" / f"{shard}.tar"
        if shard not in tars:
            tars[shard] = read_members(tar) if tar.exists() else {}
        member = tars[shard].get(r["key"], {})
        data = next((member[e] for e in IMAGE_EXTS if e in member), None)
        original = Image.new("RGB", recon.size, "gray")
        if data is not None:
            with Image.open(io.BytesIO(data)) as im:
                pixels, _ = preprocess(im, prep)
            if pixels is not None:
                original = to_pil(pixels)
        pairs.append((original, recon))
    width = max(o.width + r.width for o, r in pairs)
    sheet = Image.new("RGB", (width, sum(max(o.height, r.height) for o, r in pairs)), "white")
    y = 0
    for o, r in pairs:
        sheet.paste(o, (0, y))
        sheet.paste(r, (o.width, y))
        y += max(o.height, r.height)
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(png)
    return Path(png)
