"""A token folder as a person reads it: how many images were tokenized or dropped and why, the code grid sizes, and
the tokens per image histogram. Used by `emu3_token_shards` and `tessera report`.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.shard_io import read_json
from pipelines.core.sql import connect, path_list, sql_text
from pipelines.stats.png import COLORS, integer_ticks, label_bars, message_png, new_figure, to_png
from pipelines.stats.section import Figure, Section, Table
from pipelines.tokenize.shards import MANIFEST, TOKENS_DIR, token_job

MAX_BARS = 12


def grid_sizes(out: Path) -> list[dict]:
    """Rows of sql/tokens_per_image.sql (h, w, tokens, images) over the finished token shards of `out`."""
    files = [Path(out) / TOKENS_DIR / f"{shard}.parquet" for shard in sorted(token_job(out).finished())]
    files = [f for f in files if f.is_file()]
    if not files:
        return []
    con = connect()
    con.execute(f"CREATE VIEW tokens AS SELECT * FROM read_parquet({path_list(files)})")
    cur = con.execute(sql_text("tokens_per_image"))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def tokens_per_image_plot(grids: list[dict]) -> bytes:
    """PNG: images per number of image tokens (h * w): one bar per value when there are few, else a histogram."""
    if not grids:
        return message_png("Tokens per image", "no tokenized images yet")
    per_count: dict[int, int] = {}
    for g in grids:
        per_count[int(g["tokens"])] = per_count.get(int(g["tokens"]), 0) + int(g["images"])
    fig = new_figure(6.0, 3.2)
    ax = fig.add_subplot()
    if len(per_count) <= MAX_BARS:
        xs = sorted(per_count)
        bars = ax.bar([str(x) for x in xs], [per_count[x] for x in xs], color=COLORS["line"])
        label_bars(ax, bars, [per_count[x] for x in xs])
    else:
        ax.hist(list(per_count), bins=30, weights=list(per_count.values()), color=COLORS["line"])
    images = sum(per_count.values())
    mean = sum(t * n for t, n in per_count.items()) / images
    ax.set_xlabel("image tokens (h x w codes)")
    ax.set_ylabel("images")
    integer_ticks(ax.yaxis)
    ax.set_title(f"Tokens per image ({images:,} images, mean {mean:,.0f})", fontsize=10)
    return to_png(fig)


def tokens_section(out: Path) -> Section:
    """Facts from the manifest, drops by reason, grid sizes and the tokens per image plot of a token folder."""
    out = Path(out)
    manifest = read_json(out / MANIFEST, default={}) or {}
    grids = grid_sizes(out)
    images = sum(int(g["images"]) for g in grids)
    total = sum(int(g["tokens"]) * int(g["images"]) for g in grids)
    facts = {"tokenizer": manifest.get("tokenizer", ""), "samples": manifest.get("samples", 0),
             "tokenized": images, "total_tokens": total,
             "mean_tokens_per_image": round(total / images, 1) if images else 0.0}
    dropped = [{"reason": r, "samples": n} for r, n in
               sorted((manifest.get("dropped") or {}).items(), key=lambda kv: (-kv[1], kv[0]))]
    tables = {
        "dropped_by_reason": Table("Samples not tokenized, by reason", dropped, {"reason": "reason",
                                                                                "samples": "samples"}),
        "grid_sizes": Table("Code grid sizes", grids, {"h": "h", "w": "w", "tokens": "tokens", "images": "images"}),
    }
    figures = {"tokens_per_image": Figure("Tokens per image", tokens_per_image_plot(grids))}
    return Section("tokens", "Emu3 tokens", out, facts, tables, figures)
