"""`tessera ingest --prepare-only` over a growing folder: 1M -> 20M rows in 1M-row partitions (quick: 4 x 100k).

Each partition is one synthetic LAION-style metadata file (unique URLs, ~2% duplicates within the partition, ~2%
repeating the previous partition, ~0.5% invalid) prepared in its own process through the CLI's code path, so its
time and peak RSS are its own. Per-row growth compares the partition at ~2M total rows with the last one.
"""

from __future__ import annotations

from pathlib import Path

from bench.scale_parts.common import child, growth


def make_metadata(path: str, part: int, rows: int) -> dict:
    """Write partition `part`'s metadata file (URL, TEXT, WIDTH, HEIGHT) with DuckDB."""
    import duckdb

    base = part * rows
    duckdb.execute(f"""COPY (
        SELECT CASE WHEN i % 200 = 3 THEN 'ftp://h' || (id % 997) || '.example/' || id || '.jpg'
                    ELSE 'http://h' || (id % 997) || '.example/' || id || '.jpg' END AS URL,
               'a caption of sample ' || (i + {base}) || ' with a few more words' AS TEXT,
               256 + i % 512 AS WIDTH, 256 + i % 384 AS HEIGHT
        FROM (SELECT i, CASE WHEN i % 50 = 7 AND i >= 10 THEN i - 7 + {base}
                             WHEN i % 50 = 11 AND {part} > 0 THEN i + 1 + {base - rows}
                             ELSE i + {base} END AS id FROM range({rows}) t(i))) TO '{path}' (FORMAT parquet)""")
    return {}


def prepare_one(meta: str, out: str, name: str) -> dict:
    """`tessera ingest --source laion --prepare-only` for one partition; its manifest's counts."""
    from pipelines.cli.main import main
    from pipelines.ingest.partitions import PAIR_PARTITIONS

    code = main(["ingest", "--source", "laion", "--metadata", meta, "--out", out, "--partition", name,
                 "--prepare-only", "--quiet"])
    if code != 0:
        raise RuntimeError(f"tessera ingest --prepare-only exited {code}")
    m = PAIR_PARTITIONS.get(Path(out), name)
    return {"rows": m.input_rows, "accepted": m.accepted, "rejected": m.rejected}


def run(quick: bool, work: Path) -> dict:
    """Prepare the partitions one after another; per-partition seconds, per-row growth, peak RSS."""
    rows, parts = (100_000, 4) if quick else (1_000_000, 20)
    work.mkdir(parents=True, exist_ok=True)
    out, per = work / "ingest", []
    for p in range(parts):
        meta = work / f"meta-{p:03d}.parquet"
        make_metadata(str(meta), p, rows)
        r = child("bench.scale_parts.prepare:prepare_one", meta=str(meta), out=str(out), name=f"p{p:03d}")
        meta.unlink()
        per.append(r)
        print(f"  partition {p + 1:>2}/{parts} ({(p + 1) * rows:>10,} rows in folder): {r['wall_s']:6.2f} s, "
              f"peak RSS {r['peak_rss_mb']:7.1f} MB, accepted {r['accepted']:,}, rejected {r['rejected']:,}",
              flush=True)
    small = per[1] if parts > 1 else per[0]  # the partition at ~2M rows total (quick: 200k)
    g = growth(small["wall_s"] / small["rows"], per[-1]["wall_s"] / per[-1]["rows"])
    peak = max(r["peak_rss_mb"] for r in per)
    figures = {"rows_per_partition": rows, "partitions": parts, "first_partition_s": per[0]["wall_s"],
               "last_partition_s": per[-1]["wall_s"], "partition_s": [r["wall_s"] for r in per],
               "per_row_growth": g, "growth_goal": 1.3, "peak_rss_mb_max": peak, "peak_rss_goal_mb": 3072,
               "accepted": sum(r["accepted"] for r in per), "rejected": sum(r["rejected"] for r in per)}
    if not quick:
        figures["growth_goal_met"] = g <= 1.3
        figures["peak_rss_goal_met"] = peak < 3072
    print(f"  per-row growth (partition at {2 * rows:,} vs {parts * rows:,} rows): {g}x (goal <= 1.3); "
          f"peak RSS max {peak:.0f} MB (goal < 3072)")
    return figures
