"""`tessera demo`: the whole pipeline on the bundled sample, served over HTTP on 127.0.0.1, with tiny models.

Each step runs through the same CLI code a user would type, so the demo shows the real commands and their output.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines.demo.documents_sample import build_document_sample
from pipelines.demo.sample import build_demo_sample
from pipelines.demo.video_sample import build_video_sample
from pipelines.core.errors import TesseraUserError
from pipelines.demo.http_server import serve_folder

MARKER = ".tessera-demo"


def _fresh(out: Path) -> None:
    """Start from an empty folder; only a previous demo's folder is ever wiped."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise TesseraUserError(f"{out} exists and was not made by `tessera demo`; pick another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by tessera demo\n")


def demo_steps(out: Path, metadata: Path, documents: dict[str, Path] | None = None,
               videos: dict[str, Path] | None = None) -> list[tuple[str, list[str]]]:
    """The CLI calls the demo makes, in order (document and video steps when their sample files are given)."""
    ingest, curate, captions, tokens = (str(out / d) for d in ("ingest", "curate", "captions", "tokens"))
    # The demo serves its own sample from 127.0.0.1: allowed explicitly, and not paced.
    local = ["--allow-private-network", "--per-host-rate", "1000", "--per-host-connections", "16"]
    small_vq = ["--vq-model", "tiny", "--target-area", "4096", "--min-area", "4096", "--max-area", "16384"]
    steps = [
        ("ingest", ["ingest", "--source", "laion", "--metadata", str(metadata), "--out", ingest,
                    "--samples-per-shard", "100", "--processes", "2", "--threads", "16", *local]),
        ("curate", ["curate", ingest, "--preset", "datacomp_basic", "--out", curate, "--clip-model", "tiny"]),
        ("caption", ["caption", ingest, "--curated", curate, "--out", captions, "--captioner", "tiny",
                     "--llm", "tiny", "--batch-size", "16"]),
        ("tokenize", ["tokenize", ingest, "--curated", curate, "--captions", captions, "--out", tokens, *small_vq]),
        ("export-eva-clip", ["export-eva-clip", ingest, "--curated", curate, "--captions", captions,
                             "--out", str(out / "eva_clip"), "--samples-per-shard", "64"]),
    ]
    if documents:
        docs_ingest, docs_curate, docs_tokens = (str(out / d) for d in ("docs_ingest", "docs_curate", "docs_tokens"))
        for source in ("mmc4", "obelics"):
            steps.append((f"ingest-{source}", ["ingest", "--source", source, "--metadata", str(documents[source]),
                                               "--out", docs_ingest, "--samples-per-shard", "100", "--processes", "1",
                                               "--threads", "16", "--quiet", *local]))
        # The tiny random CLIP's similarities mean nothing: its relevance threshold is switched off here.
        steps += [
            ("curate-documents", ["curate", docs_ingest, "--preset", "mmc4,obelics", "--out", docs_curate,
                                  "--clip-model", "tiny", "--min-clip-score", "-1", "--docs-per-shard", "8"]),
            ("tokenize-documents", ["tokenize", docs_ingest, "--curated", docs_curate, "--out", docs_tokens,
                                    *small_vq]),
            ("doc-sequences", ["doc-sequences", docs_curate, "--tokens", docs_tokens,
                               "--out", str(out / "docs_sequences")]),
        ]
    if videos:
        v_ingest, v_curate = str(out / "video_ingest"), str(out / "video_curate")
        for source in ("webvid", "panda70m"):
            steps.append((f"ingest-{source}", ["ingest", "--source", source, "--metadata", str(videos[source]),
                                               "--out", v_ingest, "--timeout", "5", "--quiet", *local]))
        steps += [
            ("curate-video", ["curate", v_ingest, "--preset", "webvid", "--out", v_curate, "--clip-model", "tiny"]),
            ("tokenize-video", ["tokenize-video", v_ingest, "--curated", v_curate, "--out", str(out / "video_tokens"),
                                "--sample-fps", "4", "--max-frames", "8", *small_vq]),
            ("export-video-frames", ["export-video-frames", v_ingest, "--curated", v_curate, "--frames", "4",
                                     "--out", str(out / "video_frames")]),
        ]
    steps.append(("report", ["report", str(out), "--out", str(out / "report.html")]))
    return steps


def run_demo(out: Path, console: Console | None = None) -> dict[str, float]:
    """Run every step; returns seconds per step."""
    from pipelines.cli.main import main

    console = console or Console()
    out = Path(out).resolve()
    _fresh(out)
    timings: dict[str, float] = {}
    with serve_folder(out / "sample" / "www") as base_url:
        metadata = build_demo_sample(out / "sample", base_url)
        documents = build_document_sample(out / "sample", out / "sample" / "www", base_url)
        videos = build_video_sample(out / "sample", out / "sample" / "www", base_url)
        console.rule(f"[bold]Tessera demo[/bold]: {metadata} served from {base_url}")
        for name, argv in demo_steps(out, metadata, documents, videos):
            console.rule(f"[bold]tessera {' '.join(argv[:1])}[/bold]")
            console.print("$ tessera " + " ".join(argv), style="dim")
            start = time.perf_counter()
            code = main(argv)
            timings[name] = time.perf_counter() - start
            if code != 0:
                raise TesseraUserError(f"demo step '{name}' failed with exit code {code}")
    from pipelines.stats.ingest_stats import ingest_stats
    from pipelines.stats.plot import plot_ingest_stats

    plot = plot_ingest_stats(ingest_stats(out / "ingest"), out / "ingest_stats.png")
    table = Table(title="Demo finished", title_justify="left")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("output")
    outputs = {"ingest": "ingest", "curate": "curate", "caption": "captions", "tokenize": "tokens",
               "export-eva-clip": "eva_clip", "ingest-mmc4": "docs_ingest", "ingest-obelics": "docs_ingest",
               "curate-documents": "docs_curate", "tokenize-documents": "docs_tokens",
               "doc-sequences": "docs_sequences", "ingest-webvid": "video_ingest", "ingest-panda70m": "video_ingest",
               "curate-video": "video_curate", "tokenize-video": "video_tokens",
               "export-video-frames": "video_frames", "report": "report.html"}
    for name, seconds in timings.items():
        table.add_row(name, f"{seconds:.1f}", str(out / outputs[name]))
    console.print(table)
    console.print(f"Plot of where every input row went: {plot}")
    console.print(f"Every stage's tables and plots on one page: {out / 'report.html'}")
    console.print(f"Documents: tessera stats {out / 'docs_ingest'}  |  tessera stats {out / 'docs_curate'}")
    console.print(f"Video: tessera stats {out / 'video_ingest'}  |  clip ledger {out / 'video_curate'}/clip_ledger.parquet")
    console.print(f"Look at it: tessera stats {out / 'ingest'}  |  tessera stats {out / 'curate'}  |  "
                  f"tessera tokenize-qa {out / 'tokens'} --png {out / 'tokens_qa.png'}")
    return timings
