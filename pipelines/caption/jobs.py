"""Running the captioning and fusion phases part by part: resumable, atomic, with progress and a summary.

Phase 1 (`synthesize`) writes `OUT/synthetic/<part>.parquet`; phase 2 (`fuse`) writes `OUT/captions/<part>.parquet`
with key, raw_caption, synthetic_caption, fused_caption, final_caption, caption_source, models, status (and token
counts). Each part's `_stats.json` is written last and marks it finished.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from pipelines.core import schema as S
from pipelines.caption.caption_fuser import GENERATED_TOKENS, PROMPT_TOKENS, CaptionFuser
from pipelines.caption.hygiene import HygieneConfig, finalize_captions
from pipelines.caption.parts import RAW_CAPTION, SYNTHETIC_CAPTION, Part, part_job
from pipelines.core.runner import StageRunner
from pipelines.caption.synthetic_captioner import CAPTIONER_STATUS, CAPTIONER_TOKENS, SyntheticCaptioner

MODELS = "models"
SYNTHETIC_COLUMNS = (S.KEY, RAW_CAPTION, SYNTHETIC_CAPTION, CAPTIONER_STATUS, CAPTIONER_TOKENS, MODELS)
FUSED_COLUMNS = (
    S.KEY, RAW_CAPTION, SYNTHETIC_CAPTION, "fused_caption", "final_caption", "caption_source", MODELS, S.STATUS,
    PROMPT_TOKENS, GENERATED_TOKENS,
)


@dataclass
class RunSummary:
    """Totals over the parts of one run, printed at the end."""

    phase: str
    parts_done: int = 0
    parts_skipped: int = 0
    rows: int = 0
    seconds: float = 0.0
    tokens: int = 0
    statuses: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)

    def add(self, stats: dict) -> None:
        """Fold in one part's stats."""
        self.parts_done += 1
        self.rows += stats["rows"]
        self.seconds += stats["seconds"]
        self.tokens += stats["generated_tokens"]
        self.statuses.update(stats["statuses"])
        self.sources.update(stats.get("caption_sources", {}))

    def text(self) -> str:
        """A summary a person can read."""
        rate = self.rows / self.seconds if self.seconds else 0.0
        tok = self.tokens / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.phase}: {self.rows} rows in {self.parts_done} parts ({self.parts_skipped} already done) in "
            f"{self.seconds:.1f} s: {rate:.2f} rows/s, {tok:.1f} generated tokens/s",
            "  status: " + (", ".join(f"{k}={v}" for k, v in self.statuses.most_common()) or "-"),
        ]
        if self.sources:
            lines.append("  caption_source: " + ", ".join(f"{k}={v}" for k, v in self.sources.most_common()))
        return "\n".join(lines)


def models_json(**models: str | None) -> str:
    """The `models` ledger value: which captioner and LLM made a row, as a JSON object."""
    return json.dumps({k: v for k, v in models.items() if v is not None}, sort_keys=True)


def _with_models(table: pa.Table, models: str) -> pa.Table:
    col = pa.array([models] * table.num_rows, pa.string())
    if MODELS in table.column_names:
        return table.set_column(table.schema.get_field_index(MODELS), MODELS, col)
    return table.append_column(MODELS, col)


def _run_parts(parts, out_dir, phase, process, progress) -> RunSummary:
    job = part_job(out_dir)
    summary = RunSummary(phase)
    pending = set(job.pending(p.part_id for p in parts))
    todo = [p for p in parts if p.part_id in pending]
    summary.parts_skipped = len(parts) - len(todo)
    for part in tqdm(todo, desc=phase, unit="part", disable=not progress, file=sys.stderr):
        with job.unit(part.part_id) as writer:
            if writer is None:  # a concurrent run finished it meanwhile
                continue
            table, skipped = part.load()
            start = time.perf_counter()
            result, stats = process(table)
            stats.update(rows=result.num_rows, seconds=round(time.perf_counter() - start, 3),
                         skipped_inputs=skipped)
            writer.parquet(result, f"{part.part_id}.parquet")
            writer.commit(stats, expect={f"{part.part_id}.parquet": table.num_rows})
        summary.add(stats)
    return summary


def synthesize(parts: list[Part], out_dir: Path, captioner: SyntheticCaptioner, runner: StageRunner,
               models: str, progress: bool = True) -> RunSummary:
    """Phase 1: a synthetic caption for every image of every unfinished part."""

    def process(table):
        result = _with_models(runner.run([captioner], table), models)
        result = result.select(list(SYNTHETIC_COLUMNS))
        stats = {
            "statuses": dict(Counter(result.column(CAPTIONER_STATUS).to_pylist())),
            "generated_tokens": int(sum(result.column(CAPTIONER_TOKENS).to_pylist())),
            "models": models,
        }
        return result, stats

    return _run_parts(parts, out_dir, "synthetic captions", process, progress)


def fuse(parts: list[Part], out_dir: Path, fuser: CaptionFuser, runner: StageRunner, hygiene: HygieneConfig,
         models: str, progress: bool = True) -> RunSummary:
    """Phase 2: fuse, clean, and choose the final caption of every row of every unfinished part."""

    def process(table):
        result = finalize_captions(runner.run([fuser], table), hygiene)
        result = _with_models(result, models)
        result = result.select(list(FUSED_COLUMNS))
        stats = {
            "statuses": dict(Counter(result.column(S.STATUS).to_pylist())),
            "caption_sources": dict(Counter(result.column("caption_source").to_pylist())),
            "generated_tokens": int(sum(result.column(GENERATED_TOKENS).to_pylist())),
            "models": models,
            "fallback": hygiene.fallback,
        }
        return result, stats

    return _run_parts(parts, out_dir, "fused captions", process, progress)


def caption_rows(captions_dir: Path, sql_name: str, part_ids=None) -> list[dict]:
    """Run `sql/<sql_name>.sql` over the finished parts of a captions folder (view `fused_captions`), or over the
    finished parts among `part_ids` (one partition's shards); rows as dicts."""
    from pipelines.core.sql import connect, path_list, sql_text

    done = part_job(captions_dir).finished()
    wanted = set(done) if part_ids is None else set(done) & set(part_ids)
    files = [Path(captions_dir) / f"{part_id}.parquet" for part_id in sorted(wanted)]
    con = connect()
    if files:
        con.execute(f"CREATE VIEW fused_captions AS SELECT * FROM read_parquet({path_list(files)})")
    else:
        con.execute("CREATE VIEW fused_captions AS SELECT NULL::VARCHAR AS raw_caption, NULL::VARCHAR AS "
                    "synthetic_caption, NULL::VARCHAR AS final_caption, NULL::VARCHAR AS caption_source, "
                    "NULL::VARCHAR AS fused_caption, NULL::VARCHAR AS status WHERE false")
    cur = con.execute(sql_text(sql_name))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def query_captions(captions_dir: Path, sql_name: str, part_ids=None) -> dict:
    """The one row of `sql/<sql_name>.sql` over a captions folder's finished parts (or those among `part_ids`)."""
    return caption_rows(captions_dir, sql_name, part_ids)[0]


def part_counts(out_dir: Path, part_ids=None) -> dict:
    """Rows, statuses and caption sources summed over the finished parts' stats (those among `part_ids` only)."""
    statuses: Counter = Counter()
    sources: Counter = Counter()
    rows = parts = 0
    for part_id, stats in part_job(out_dir).finished().items():
        if part_ids is not None and part_id not in part_ids:
            continue
        parts += 1
        rows += stats.get("rows", 0)
        statuses.update(stats.get("statuses", {}))
        sources.update(stats.get("caption_sources", {}))
    return {"parts": parts, "rows": rows, "statuses": dict(statuses.most_common()),
            "caption_sources": dict(sources.most_common())}
