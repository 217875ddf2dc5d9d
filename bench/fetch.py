"""Benchmark the guarded fetch layer: its speed against img2dataset's own fetch, and memory under hostile input.

    python bench/fetch.py                   # 2,000 loopback images: img2dataset.download() vs `tessera ingest`
    python bench/fetch.py --images 500      # a quicker run

Speed: the same 2,000 URLs on a loopback server, the same processes, threads, resize and shard size, once with
img2dataset's own `download()` and once through Tessera's ingest (fetch layer, staging, verification). Per-host caps
are raised for this run (one loopback host serves everything; a crawl keeps the defaults). Goal: ratio <= 1.1.
Memory: a hostile partition (a 30000x30000 PNG of ~875 KB, a JPEG header declaring 60000x60000, a 1.5 GB body
without Content-Length, a slow drip) plus good images, in a fresh process; the largest process's peak RSS is read
from getrusage. Goal: < 2.5 GB. The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repo root, not bench/

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from PIL import Image  # noqa: E402

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
SETTINGS = dict(processes=2, threads=32, image_size=256, samples_per_shard=500)


def jpeg(seed: int, w: int = 320, h: int = 240) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def full_png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A complete grey PNG of width x height zero pixels, compressed row by row (~875 KB for 30000^2)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp, row, parts = zlib.compressobj(9), b"\x00" * (width + 1), []
    for _ in range(height):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def jpeg_header_bomb(width: int = 60000, height: int = 60000) -> bytes:
    data = bytearray(jpeg(0, 16, 16))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


@contextmanager
def server(images: list[bytes], hostile: dict[str, bytes]):
    """Loopback server: /img/N.jpg -> images[N % len], /png_bomb, /jpeg_bomb, /huge (1.5 GB, no length), /drip."""
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):  # noqa: N802
            try:
                if self.path.startswith("/img/"):
                    self._send(images[int(self.path[5:].split(".")[0]) % len(images)])
                elif self.path.lstrip("/") in hostile:
                    self._send(hostile[self.path.lstrip("/")])
                elif self.path == "/huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.end_headers()
                    block = b"\x00" * (1 << 20)
                    for _ in range(1536):
                        self.wfile.write(block)
                elif self.path == "/drip":
                    self.send_response(200)
                    self.end_headers()
                    for _ in range(240):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.5)
                else:
                    self.send_error(404)
            except OSError:
                pass  # the client hung up, as the guards should

        def _send(self, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

        def handle_error(self, *args):
            pass

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()


def metadata(path: Path, urls: list[str]) -> Path:
    pq.write_table(pa.table({"URL": urls, "TEXT": [f"caption {i}" for i in range(len(urls))]}), path)
    return path


def run_img2dataset(meta: Path, out: Path) -> float:
    from img2dataset import download

    start = time.perf_counter()
    download(url_list=str(meta), input_format="parquet", url_col="URL", caption_col="TEXT",
             output_format="webdataset", output_folder=str(out), processes_count=SETTINGS["processes"],
             thread_count=SETTINGS["threads"], image_size=SETTINGS["image_size"], resize_mode="keep_ratio",
             resize_only_if_bigger=True,  # Tessera's default: small originals are not upscaled
             number_sample_per_shard=SETTINGS["samples_per_shard"], compute_hash="sha256", timeout=10, retries=0,
             extract_exif=True, enable_wandb=False, save_additional_columns=None)
    return time.perf_counter() - start


def run_tessera(meta: Path, out: Path, **fetch) -> tuple[float, dict]:
    from pipelines.ingest.fetch import FetchConfig
    from pipelines.ingest.image_downloader import DownloadConfig
    from pipelines.ingest.sequence import ingest
    from pipelines.stats.ingest_stats import ingest_stats

    cfg = DownloadConfig(processes=SETTINGS["processes"], threads=SETTINGS["threads"],
                         image_size=SETTINGS["image_size"],
                         fetch=FetchConfig(allow_private_network=True, **fetch))
    start = time.perf_counter()
    try:
        ingest("laion", [meta], out, download=cfg, samples_per_shard=SETTINGS["samples_per_shard"],
               progress=False)
    except Exception as err:  # noqa: BLE001 - the bench reports what happened, it does not stop
        print(f"ingest: {err}", file=sys.stderr)
    seconds = time.perf_counter() - start
    stats = ingest_stats(out)
    return seconds, {"success": stats["success"], "fail_reasons": stats["fail_reasons"]}


def hostile(n_good: int) -> dict:
    """Run in a fresh process: a hostile partition; returns the peak RSS of this process and its children."""
    images = [jpeg(i) for i in range(8)]
    bombs = {"png_bomb.png": full_png_bomb(), "jpeg_bomb.jpg": jpeg_header_bomb()}
    with tempfile.TemporaryDirectory() as tmp, server(images, bombs) as base:
        urls = [f"{base}/img/{i}.jpg" for i in range(n_good)] + [f"{base}/png_bomb.png", f"{base}/jpeg_bomb.jpg",
                                                                  f"{base}/huge", f"{base}/drip"]
        meta = metadata(Path(tmp) / "hostile.parquet", urls)
        seconds, stats = run_tessera(meta, Path(tmp) / "out", per_host_connections=32, per_host_rate=1e6)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"hostile_seconds": round(seconds, 1), "hostile_peak_rss_mb": round(peak / 1024, 1),
            "png_bomb_bytes": len(bombs["png_bomb.png"]), **{f"hostile_{k}": v for k, v in stats.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--hostile-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hostile_only:
        print(json.dumps(hostile(50)))
        return
    proc = subprocess.run([sys.executable, __file__, "--hostile-only"], capture_output=True, text=True)
    mem = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"hostile partition: peak RSS {mem['hostile_peak_rss_mb']} MB (goal < 2500), {mem['hostile_seconds']} s")
    print(f"  outcomes: {mem['hostile_success']} good images kept; refusals {mem['hostile_fail_reasons']}")

    images = [jpeg(i) for i in range(32)]
    with tempfile.TemporaryDirectory() as tmp, server(images, {}) as base:
        meta = metadata(Path(tmp) / "m.parquet", [f"{base}/img/{i}.jpg" for i in range(args.images)])
        base_s = run_img2dataset(meta, Path(tmp) / "i2d")
        ours_s, stats = run_tessera(meta, Path(tmp) / "tessera", per_host_connections=32, per_host_rate=1e6)
    ratio = ours_s / base_s
    print(f"{args.images} loopback images: img2dataset {base_s:.1f} s, tessera ingest {ours_s:.1f} s "
          f"(ratio {ratio:.2f}, goal <= 1.1); {stats['success']} succeeded")
    result = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "images": args.images,
              "img2dataset_s": round(base_s, 2), "tessera_s": round(ours_s, 2), "ratio": round(ratio, 3),
              "tessera_success": stats["success"], **mem}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
