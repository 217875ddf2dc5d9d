"""`tessera report`: the tables and plots of the Dagster asset pages as ONE self-contained HTML page (images inlined).

OUT is either a Tessera output root holding stage folders (`ingest/`, `curate/`, `captions/`, `tokens/`,
`docs_ingest/`, ..., as the demo and the Dagster assets write them) or a single stage folder; each stage is recognised
by what it writes. The stages and their sections are the tracks' (`ReportStage`, declared in each track's "report"
role); `tessera report` passes them in from the registry.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import atomic_path
from pipelines.stats.section import Section, Table, data_uri, fmt

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class ReportStage:
    """A stage a track shows in the report: its folder name under an output root, how a folder of it is recognised
    (by what the stage writes), and the section built from such a folder. Each track declares its stages (role
    "report"); the caller passes them in, so stats imports no track."""

    name: str
    is_stage: Callable[[Path], bool]
    build: Callable[[Path], Section]


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


def stage_folders(out: Path, stages: list[ReportStage]) -> list[tuple[ReportStage, Path]]:
    """(stage, folder) for OUT itself when it is a stage folder, else for its stage subfolders, in pipeline order."""
    out = Path(out)
    own = [(stage, out) for stage in stages if stage.is_stage(out)]
    if own:
        return own
    return [(stage, out / stage.name) for stage in stages
            if (out / stage.name).is_dir() and stage.is_stage(out / stage.name)]


def report_sections(out: Path, stages: list[ReportStage]) -> list[Section]:
    """One section per stage of `stages` found in OUT; a user error in one line when there is none."""
    out = Path(out)
    if not out.is_dir():
        raise TesseraUserError(f"no such output folder: {out}")
    found = stage_folders(out, stages)
    if not found:
        names = ", ".join(f"{s.name}/" for s in stages)
        raise TesseraUserError(f"{out} has nothing to report: no {names} output in it, and it is none of those "
                               "stage folders")
    return [stage.build(folder) for stage, folder in found]


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


def write_report(out: Path, stages: list[ReportStage], path: Path | None = None) -> Path:
    """Write the report of the `stages` found in OUT to `path` (default OUT/report.html), atomically; returns it."""
    out = Path(out)
    sections = report_sections(out, stages)
    path = Path(path) if path is not None else out / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(render_html(sections, out.resolve()), encoding="utf-8")
    return path
