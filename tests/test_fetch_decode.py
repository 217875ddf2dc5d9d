"""Decode guard (header pixel count before any decode) and the img2dataset integration: GuardedResizer and
GuardedDownloader running img2dataset's own shard loop over a real server on 127.0.0.1."""

from __future__ import annotations

import io
import pickle
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fetch_server import body, jpeg, jpeg_bomb, png_bomb, serve
from pipelines.ingest.fetch import FetchConfig
from pipelines.ingest.fetch.decode_guard import GuardedResizer, image_pixels_error
from pipelines.ingest.fetch.downloader import GuardedDownloader

import img2dataset.downloader as i2d_downloader  # after our modules: they set its environment
from img2dataset.distributor import multiprocessing_distributor
from img2dataset.writer import WebDatasetSampleWriter

IMG = jpeg(64, 48)


def resizer(**kw) -> GuardedResizer:
    return GuardedResizer(image_size=32, resize_mode="keep_ratio", resize_only_if_bigger=False, **kw)


@pytest.mark.parametrize("bomb, size", [(png_bomb(30000, 30000), "30000x30000"),  # over 2x Pillow's limit
                                        (png_bomb(10000, 10000), "10000x10000"),  # Pillow would only warn
                                        (jpeg_bomb(60000, 60000), "60000x60000")])
def test_header_pixel_check_refuses_bombs_without_pillow_errors_or_warnings(bomb, size):
    assert len(bomb) < 2000
    limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the test
        assert image_pixels_error(io.BytesIO(bomb), 89_478_485) == f"image_too_many_pixels: {size}"
    assert Image.MAX_IMAGE_PIXELS == limit  # Pillow's own guard is back for everyone else


def test_header_pixel_check_passes_normal_and_unknown_images():
    stream = io.BytesIO(IMG)
    assert image_pixels_error(stream, 89_478_485) is None and stream.tell() == 0
    assert image_pixels_error(io.BytesIO(IMG), 64 * 48 - 1) == "image_too_many_pixels: 64x48"
    assert image_pixels_error(io.BytesIO(b"not an image"), 10) is None  # left for the decoder to report


def test_guarded_resizer_refuses_before_decoding_and_resizes_the_rest():
    guarded = resizer()
    assert guarded(io.BytesIO(png_bomb())) == (None, None, None, None, None, "image_too_many_pixels: 30000x30000")
    img, width, height, original_width, original_height, error = guarded(io.BytesIO(IMG))
    assert error is None and (original_width, original_height) == (64, 48) and min(width, height) == 32
    assert resizer(disable_all_reencoding=True)(io.BytesIO(IMG))[0] == IMG  # the stream was rewound


def _shard(path, urls: list[str]) -> str:
    table = pa.table({"url": urls, "caption": [f"caption {i}" for i in range(len(urls))]})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return str(path)


def _downloader(out, fetch_config: FetchConfig) -> GuardedDownloader:
    return GuardedDownloader(
        fetch_config, sample_writer_class=WebDatasetSampleWriter, resizer=resizer(), thread_count=4,
        save_caption=True, extract_exif=False, output_folder=str(out), column_list=["url", "caption"],
        number_sample_per_shard=10, oom_shard_count=5, compute_hash="sha256", verify_hash_type=None,
        encode_format="jpg",
    )


def test_guarded_downloader_runs_img2dataset_shards_through_the_guards(tmp_path):
    routes = {"/a.jpg": body(IMG), "/bomb.png": body(png_bomb()), "/optout.jpg": body(IMG, {"X-Robots-Tag": "noai"})}
    original = i2d_downloader.download_image_with_retry
    with serve(routes) as srv:
        urls = [srv.url + "/a.jpg", srv.url + "/bomb.png", srv.url + "/optout.jpg", srv.url + "/missing.jpg",
                "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"]
        config = FetchConfig(allowed_networks=("127.0.0.1/32",), timeout=5)
        downloader = pickle.loads(pickle.dumps(_downloader(tmp_path / "out", config)))  # as distributors ship it
        (tmp_path / "out").mkdir()
        shard = (0, _shard(tmp_path / "shard0.feather", urls))
        assert downloader(shard) == (True, shard)
    assert i2d_downloader.download_image_with_retry is original  # img2dataset itself is untouched
    rows = {r["url"]: r for r in pq.read_table(tmp_path / "out" / "00000.parquet").to_pylist()}
    assert rows[urls[0]]["status"] == "success" and rows[urls[0]]["original_width"] == 64
    assert rows[urls[1]]["status"] == "failed_to_resize"
    assert rows[urls[1]]["error_message"] == "image_too_many_pixels: 30000x30000"
    expected = [None, None, "opt_out_header", "http_error", "blocked_private_address", "blocked_scheme"]
    for url, reason in zip(urls[2:], expected[2:]):
        assert rows[url]["status"] == "failed_to_download" and rows[url]["error_message"].startswith(reason + ": ")


@pytest.mark.slow
def test_guarded_downloader_under_img2dataset_multiprocessing(tmp_path):
    """Spawned worker processes unpickle the downloader and fetch with their own Fetcher."""
    with serve({"/a.jpg": body(IMG)}) as srv:
        urls = [srv.url + "/a.jpg", "http://[::1]/a.jpg"]
        config = FetchConfig(allowed_networks=("127.0.0.1/32",), timeout=5)
        (tmp_path / "out").mkdir()
        shards = [(0, _shard(tmp_path / "shard0.feather", urls))]
        multiprocessing_distributor(1, _downloader(tmp_path / "out", config), shards, 1000, 0)
    rows = {r["url"]: r for r in pq.read_table(tmp_path / "out" / "00000.parquet").to_pylist()}
    assert rows[urls[0]]["status"] == "success" and rows[urls[0]]["error_message"] is None
    assert rows[urls[1]]["error_message"].startswith("blocked_private_address: ::1 is loopback")
