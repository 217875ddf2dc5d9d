"""`tessera report`: the tables and plots of the Dagster asset pages as ONE self-contained HTML page (images inlined).

OUT is either a Tessera output root holding stage folders (`ingest/`, `curate/`, `captions/`, `tokens/`, as the demo
and the Dagster assets write them) or a single stage folder; each stage is recognised by what it writes.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

from pipelines.caption.parts import CAPTIONS_DIR, SYNTHETIC_DIR
from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import atomic_path
from pipelines.curate.selection import CURATED_DIR
from pipelines.stats.section import Section, Table, data_uri, fmt
from pipelines.tokenize.shards import TOKENS_DIR

REPORT_FILE = "report.html"

STAGE_MARKERS = {
    "ingest": lambda p: (p / S.SHARDS_DIR).is_dir(),
    "curate": lambda p: ((p / CURATED_DIR).is_dir() and not (p / "doc_ledger.parquet").is_file()
                         and not (p / "clip_ledger.parquet").is_file()),
    # A root also has a captions/ child, but of folders; a captions stage folder has parts (or synthetic/) in it.
    "captions": lambda p: (p / SYNTHETIC_DIR).is_dir() or any((p / CAPTIONS_DIR).glob("*_stats.json")),
    "tokens": lambda p: (p / TOKENS_DIR).is_dir(),
    "docs_ingest": lambda p: any((p / "documents").glob("*.json")) and (p / S.SHARDS_DIR).is_dir(),
    "docs_curate": lambda p: (p / "doc_ledger.parquet").is_file(),
    "video_ingest": lambda p: any((p / "video").glob("*.json")),
    "video_curate": lambda p: (p / "clip_ledger.parquet").is_file(),
}

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.folder { color: #666; font-size: 0.85em; font-weight: normal; }
table { border-collapse: collapse; margin: 0.4em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; } figcaption { color: #555; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def stage_folders(out: Path) -> list[tuple[str, Path]]:
    """(stage, folder) for OUT itself when it is a stage folder, else for its stage subfolders, in pipeline order."""
    out = Path(out)
    own = [(stage, out) for stage, is_stage in STAGE_MARKERS.items() if is_stage(out)]
    if own:
        return own
    return [(stage, out / stage) for stage, is_stage in STAGE_MARKERS.items()
            if (out / stage).is_dir() and is_stage(out / stage)]


def report_sections(out: Path) -> list[Section]:
    """One section per stage found in OUT; a user error in one line when there is none."""
    from pipelines.stats.caption_figures import captions_section
    from pipelines.stats.curate_figures import curate_section
    from pipelines.stats.ingest_figures import ingest_section
    from pipelines.stats.token_figures import tokens_section

    out = Path(out)
    if not out.is_dir():
        raise TesseraUserError(f"no such output folder: {out}")
    from pipelines.documents.figures import documents_section
    from pipelines.video.figures import video_curate_section, video_ingest_section

    builders = {"ingest": ingest_section, "curate": curate_section, "captions": captions_section,
                "tokens": tokens_section, "docs_ingest": documents_section, "docs_curate": documents_section,
                "video_ingest": video_ingest_section, "video_curate": video_curate_section}
    found = stage_folders(out)
    if not found:
        raise TesseraUserError(f"{out} has nothing to report: no ingest/, curate/, captions/ or tokens/ output in it, "
                               "and it is none of those stage folders")
    return [builders[stage](folder) for stage, folder in found]


def _cell(value) -> str:
    cls = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"<td{cls}>{html.escape(fmt(value))}</td>"


def _table(table: Table) -> str:
    headers = table.headers()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers.values()) or "<th>(none)</th>"
    body = "".join("<tr>" + "".join(_cell(row.get(k)) for k in headers) + "</tr>" for row in table.rows)
    body = body or f'<tr><td colspan="{max(1, len(headers))}">(none)</td></tr>'
    return f"<h3>{html.escape(table.title)}</h3>\n<table><tr>{head}</tr>{body}</table>"


def _section(section: Section) -> str:
    parts = [f'<section id="{section.stage}"><h2>{html.escape(section.title)} '
             f'<span class="folder">{html.escape(str(section.folder))}</span></h2>']
    if section.facts:
        facts = "".join(f"<tr><th>{html.escape(k)}</th>{_cell(v)}</tr>" for k, v in section.facts.items())
        parts.append(f"<table>{facts}</table>")
    parts += [_table(t) for t in section.tables.values()]
    for fig in section.figures.values():
        parts.append(f'<figure><img alt="{html.escape(fig.title)}" src="{data_uri(fig.png)}">'
                     f"<figcaption>{html.escape(fig.title)}</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(sections: list[Section], out: Path) -> str:
    """The whole page: a heading, links to the stages, then each stage's facts, tables and figures."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = " | ".join(f'<a href="#{s.stage}">{html.escape(s.title)}</a>' for s in sections)
    title = f"Tessera report: {out}"
    return "\n".join([
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Tessera report</h1><p>{html.escape(str(out))}, written {when}</p><nav>{nav}</nav>",
        *(_section(s) for s in sections),
        "</body></html>\n",
    ])


def write_report(out: Path, path: Path | None = None) -> Path:
    """Write the report of OUT to `path` (default OUT/report.html), atomically; returns the path."""
    out = Path(out)
    sections = report_sections(out)
    path = Path(path) if path is not None else out / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(render_html(sections, out.resolve()), encoding="utf-8")
    return path
