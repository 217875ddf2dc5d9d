"""The Dagster UI in a real browser (Debian's chromium driven by Playwright): open the asset graph, launch a
materialization by clicking, wait for it, and check what a user must see on the asset page. Screenshots of every
step are kept in `test-artifacts/ui/`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import dagster_instance, write_parquet
from dagster import AssetKey, materialize

from assets.ingest_assets import image_shards, raw_metadata
from assets.partitions import metadata_files
from assets.resources import TesseraResource

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TESSERA_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
INSTANCE_YAML = """telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""
pytestmark = pytest.mark.slow


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def webserver(tmp_path, make_images):
    """`dagster-webserver` over a temporary DAGSTER_HOME, with one ingested partition's shards on disk."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium when run as root)")
    pytest.importorskip("playwright.sync_api")
    home, out = tmp_path / "home", tmp_path / "tessera"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    incoming = tmp_path / "in"
    write_parquet(incoming / "trees.parquet", [{"URL": u, "TEXT": f"a green tree {i}"}
                                               for i, u in enumerate(make_images(3, "ui"))])
    resource = TesseraResource(input_dir=str(incoming), out_dir=str(out), processes=1, threads=4, image_size=64,
                               allow_private_network=True)
    with dagster_instance(home) as instance:  # one partition ingested, as the sensor would
        instance.add_dynamic_partitions(metadata_files.name, ["trees.parquet"])
        assert materialize([raw_metadata, image_shards], instance=instance, partition_key="trees.parquet",
                           resources={"tessera": resource}).success
    port = _free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home), TESSERA_OUT_DIR=str(out), TESSERA_INPUT_DIR=str(incoming),
               NO_ALBUMENTATIONS_UPDATE="1")
    log = open(tmp_path / "webserver.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("dagster-webserver")), "-m", "assets.definitions",
                             "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/server_info", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"dagster-webserver did not start; log: {tmp_path / 'webserver.log'}")
            time.sleep(1)
    try:
        yield base, home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_materialized(home: Path, key: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    with dagster_instance(home) as instance:
        while instance.get_latest_materialization_event(AssetKey(key)) is None:
            assert time.monotonic() < deadline, f"{key} was not materialized within {timeout} s"
            time.sleep(2)


def test_materialize_from_the_graph_and_read_the_asset_page(webserver):
    from playwright.sync_api import sync_playwright

    base, home = webserver
    shots = ARTIFACTS / "ui"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)

        page.goto(f"{base}/locations/assets.definitions/asset-groups/ingest", wait_until="networkidle")
        skip = page.get_by_role("button", name="Skip")  # Dagster's first-visit newsletter dialog
        if skip.count():
            skip.click()
        page.get_by_text("raw_metadata", exact=True).first.wait_for()
        page.screenshot(path=shots / "01_asset_graph.png")

        page.get_by_text("shard_stats", exact=True).first.click()
        page.get_by_role("button", name="Materialize selected").click()
        page.get_by_text("Launched run", exact=False).first.wait_for()
        page.screenshot(path=shots / "02_materialization_launched.png")
        _wait_materialized(home, "shard_stats")

        page.goto(f"{base}/assets/shard_stats", wait_until="networkidle")
        page.get_by_text("success_rate", exact=True).first.wait_for()
        page.screenshot(path=shots / "03_asset_page.png", full_page=True)
        text = page.inner_text("body")
        page.get_by_role("tab", name="Checks").click()
        page.get_by_text("check_shard_stats_accounting", exact=True).first.wait_for()
        page.screenshot(path=shots / "04_asset_checks.png", full_page=True)
        checks = page.inner_text("body")
        browser.close()
    assert "Never materialized" not in text
    for needle in ("input_rows", "success_rate", "outcomes", "tessera_automation", "tessera pipeline"):
        assert needle in text, f"the shard_stats page does not show {needle!r}"
    for name in ("check_shard_stats_accounting", "check_shard_stats_success_rate", "check_shard_stats_guard_refusals"):
        assert name in checks, f"the checks tab does not list {name}"
    assert sorted(p.name for p in shots.iterdir()) == [
        "01_asset_graph.png", "02_materialization_launched.png", "03_asset_page.png", "04_asset_checks.png"]
