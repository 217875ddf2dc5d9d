"""Scale part `select`: the per-shard exact selection (DataComp CLIP top 30%: decode, URL dedup, top fraction,
sha256 dedup) over replicated scored shards of 1M -> 10M rows (quick: 100k -> 400k), each size in its own process.

The shards are generated, not downloaded: an img2dataset-style sidecar (unique keys, varied URLs, sha256, captions,
sizes, some failed rows) and a score file (CLIP scores rounded to 1e-4 so ties exist, pHashes, a few decode errors),
each committed through the shard job with its marker (the score marker with its histogram), with about 1% duplicate
URLs and 2% duplicate images, within and across shards.
"""

from __future__ import annotations

from pathlib import Path

ROWS_PER_SHARD = 10_000
HEX = "0123456789abcdef"


def _hex(rng, n: int, nbytes: int):
    import numpy as np
    import pyarrow as pa

    table = np.frombuffer(HEX.encode(), dtype=np.uint8)
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    chars = np.empty((n, 2 * nbytes), dtype=np.uint8)
    chars[:, 0::2], chars[:, 1::2] = table[raw >> 4], table[raw & 15]
    return pa.array(chars.view(f"S{2 * nbytes}").ravel().astype(str))


def _dups(rng, column, pool, rate: float):
    """`column` with a share `rate` of its rows replaced by values from `pool` (earlier values: duplicates)."""
    import numpy as np
    import pyarrow as pa

    values = np.array(column.to_pylist(), dtype=object)
    hit = rng.random(len(values)) < rate
    values[hit] = rng.choice(pool, int(hit.sum()))
    return pa.array(values, pa.string())


def generate(ingest: str, out: str, rows: int, seed: int = 0) -> dict:
    """Write `rows` rows of scored shards: INGEST/shards/NNNNN.parquet and OUT/scores/NNNNN.parquet, with markers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.core.shard_job import ShardJob
    from pipelines.curate.scoring import SCORES_DIR
    from pipelines.curate.threshold import HISTOGRAM, histogram

    rng = np.random.default_rng(seed)
    ingest, out = Path(ingest), Path(out)
    (ingest / "shards").mkdir(parents=True, exist_ok=True)
    (out / SCORES_DIR).mkdir(parents=True, exist_ok=True)
    words = np.array("a the photo of small red house lake green boat river dog cat city night sky tree road car "
                     "man woman child beach mountain snow white black blue old new view street market".split())
    seen_urls, seen_sha = np.array(["http://seed.example/0.jpg"]), _hex(rng, 1, 32).to_numpy(zero_copy_only=False)
    n_shards = rows // ROWS_PER_SHARD
    for s in range(n_shards):
        sid, n = f"{s:05d}", ROWS_PER_SHARD
        keys = pa.array([f"{sid}{i:05d}" for i in range(n)])
        hosts = rng.integers(0, 5000, n)
        url = pa.array([f"http://img{h}.example/{p}.jpg" for h, p in zip(hosts, _hex(rng, n, 8).to_pylist())])
        url = _dups(rng, url, seen_urls, 0.01)
        sha = _dups(rng, _hex(rng, n, 32), seen_sha, 0.02)
        caption = [" ".join(rng.choice(words, rng.integers(2, 12))) for _ in range(n)]
        status = np.where(rng.random(n) < 0.02, "failed_to_download", "success")
        w, h = rng.integers(64, 2000, n), rng.integers(64, 2000, n)
        side = pa.table({"key": keys, "url": url, "caption": caption, "status": status,
                         "original_width": w, "original_height": h, "width": np.minimum(w, 256),
                         "height": np.minimum(h, 256), "sha256": sha, "source": ["bench"] * n})
        pq.write_table(side, ingest / "shards" / f"{sid}.parquet")
        with ShardJob(ingest, "shards").unit(sid) as writer:
            writer.adopt(ingest / "shards" / f"{sid}.parquet", f"shards/{sid}.parquet")
            writer.commit({"successes": int((status == "success").sum()), "count": n})
        ok = status == "success"
        score = np.round(rng.normal(0.25, 0.06, int(ok.sum())), 4).astype(np.float32)
        error = np.where(rng.random(len(score)) < 0.005, "decode error", None)
        score = np.where(error == None, score, np.nan).astype(np.float32)  # noqa: E711
        scores = pa.table({"key": keys.filter(pa.array(ok)), "clip_score": pa.array(score, from_pandas=True),
                           "model": ["bench"] * len(score), "clip_error": pa.array(error, pa.string()),
                           "embedding_ref": pa.nulls(len(score), pa.string()),
                           "phash": _hex(rng, len(score), 8), "image_bytes": rng.integers(2000, 90000, len(score))})
        rel = f"{SCORES_DIR}/{sid}.parquet"
        pq.write_table(scores, out / rel)
        with ShardJob(out, SCORES_DIR).unit(sid) as writer:
            writer.adopt(out / rel, rel)
            writer.commit({"shard": sid, "samples": len(score), "model": "bench",
                           HISTOGRAM: histogram(scores["clip_score"].to_numpy(zero_copy_only=False))})
        seen_urls = np.concatenate([seen_urls[-20000:], url.to_numpy(zero_copy_only=False)[:2000]])
        seen_sha = np.concatenate([seen_sha[-20000:], sha.to_numpy(zero_copy_only=False)[:2000]])
    return {"rows": n_shards * ROWS_PER_SHARD, "shards": n_shards}


def measure(ingest: str, out: str) -> dict:
    """The selection alone (`run_selection`, local engine), DataComp CLIP top 30%."""
    from pipelines.curate.presets import PRESETS, build_stages
    from pipelines.curate.selection import run_selection

    summary = run_selection(Path(ingest), Path(out), build_stages(PRESETS["datacomp_clip_l14_30pct"]))
    return {k: summary[k] for k in ("samples", "kept", "dropped", "clip_threshold", "dropped_by_reason")}


def run(quick: bool, work: Path) -> dict:
    """Generate then select at each size; figures: per-row seconds, growth, peak RSS and the goals."""
    from bench.scale_parts.common import child, growth

    sizes = [100_000, 400_000] if quick else [1_000_000, 10_000_000]
    figures: dict = {"sizes": sizes, "preset": "datacomp_clip_l14_30pct", "rows_per_shard": ROWS_PER_SHARD}
    per_row = []
    for rows in sizes:
        ingest, out = work / f"{rows}" / "ingest", work / f"{rows}" / "curate"
        made = child("bench.scale_parts.select:generate", ingest=str(ingest), out=str(out), rows=rows)
        got = child("bench.scale_parts.select:measure", ingest=str(ingest), out=str(out))
        per_row.append(got["wall_s"] / got["samples"])
        figures[f"rows_{rows}"] = {"generate_s": made["wall_s"], "select_s": got["wall_s"],
                                   "samples": got["samples"], "kept": got["kept"],
                                   "us_per_row": round(per_row[-1] * 1e6, 2), "peak_rss_mb": got["peak_rss_mb"],
                                   "dropped_by_reason": got["dropped_by_reason"]}
        print(f"select {rows:>10,} rows: {got['wall_s']:.1f} s ({per_row[-1] * 1e6:.2f} us/row), peak RSS "
              f"{got['peak_rss_mb']:.0f} MB, kept {got['kept']:,} of {got['samples']:,}", flush=True)
    figures["growth"] = growth(per_row[0], per_row[-1])
    figures["peak_rss_mb"] = max(figures[f"rows_{r}"]["peak_rss_mb"] for r in sizes)
    figures["growth_goal"], figures["peak_rss_goal_mb"] = 1.3, 4096
    if not quick:
        figures["growth_ok"] = figures["growth"] <= 1.3
        figures["peak_rss_ok"] = figures["peak_rss_mb"] < 4096
    print(f"select growth {figures['growth']} (goal <= 1.3 at 10x), peak RSS {figures['peak_rss_mb']:.0f} MB "
          "(goal < 4 GB at 10M)", flush=True)
    return figures
