"""Benchmark Tessera's pool-wide steps at growing pool sizes: is the cost per row flat, is memory bounded?

    python bench/scale.py                      # every part at the sizes the goals name (tens of minutes)
    python bench/scale.py --quick              # every part at small sizes (a smoke run, no goals judged)
    python bench/scale.py --parts prepare,select

Parts (bench/scale_parts/<part>.py):
  bookkeeping  shard-job per-unit cost (sweep, marker, finished-unit index) at 1k -> 10k units
  prepare      `tessera ingest --prepare-only` 1M -> 20M rows in 1M-row partitions: per-partition time, peak RSS
  select       per-shard exact selection over 1M -> 10M scored rows: per-row time, peak RSS
  spark        the same selection on the standalone Spark test cluster: driver RSS at growing pool sizes
Goals: per-row cost at 10x the rows <= 1.3x the smallest; peak RSS < 3 GB preparing 20M rows and < 4 GB selecting
10M; Spark driver RSS flat in pool size. Each measured step runs in its own process (its own peak RSS). The last line
printed is one JSON object of every part's figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repo root, not bench/

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench.scale_parts.common import machine  # noqa: E402

PARTS = ["bookkeeping", "prepare", "select", "spark"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: check the bench runs, judge no goal")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    result = {"machine": machine(), "quick": args.quick}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for part in parts:
            print(f"== {part}", flush=True)
            start = time.perf_counter()
            module = importlib.import_module(f"bench.scale_parts.{part}")
            figures = module.run(args.quick, Path(tmp) / part)
            figures["part_s"] = round(time.perf_counter() - start, 1)
            result[part] = figures
    print(json.dumps(result))


if __name__ == "__main__":
    main()
