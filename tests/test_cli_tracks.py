"""The CLI, the report and Dagster iterate the track registry: every track's sources are `ingest --source` choices,
molecules ingest through `tessera ingest` exactly as through its alias `tessera mol ingest`, an unknown preset names
every track's presets, and the Dagster definitions hold every track's ingest job and file sensor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.cli.main import main
from pipelines.molecules import schema as M
from pipelines.tracks import all_sources, tracks


def _rows(folder, pattern):
    return [r for p in sorted(folder.glob(pattern)) for r in pq.read_table(p).to_pylist()]


def test_ingest_source_molecules_is_mol_ingest(tmp_path, capsys):
    table = tmp_path / "mols.csv"
    table.write_text("smiles\nCCO\nc1ccccc1\nnot-a-smiles\nOCC\n")
    options = ["--molecules-per-shard", "2", "--workers", "1", "--seed", "3", "--quiet"]
    assert main(["ingest", "--source", "molecules", "--metadata", str(table), "--out", str(tmp_path / "a"),
                 *options]) == 0
    via_ingest = capsys.readouterr().out
    assert main(["mol", "ingest", "--input", str(table), "--out", str(tmp_path / "b"), *options]) == 0
    assert capsys.readouterr().out == via_ingest and "4 records, 2 kept, 2 dropped" in via_ingest
    shards = f"{M.MOLECULES_DIR}/[0-9]*[0-9].parquet"
    ledgers = f"{M.MOLECULES_DIR}/*.ledger.parquet"
    assert _rows(tmp_path / "a", shards) == _rows(tmp_path / "b", shards) and len(_rows(tmp_path / "a", shards)) == 2
    assert _rows(tmp_path / "a", ledgers) == _rows(tmp_path / "b", ledgers)


def test_every_registered_source_is_an_ingest_choice(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--source", "nope", "--metadata", "x", "--out", str(tmp_path)])
    choices = capsys.readouterr().err.split("choose from", 1)[1]
    assert {"laion", "mmc4", "webvid", "molecules"} <= set(all_sources())
    assert all(f"'{source}'" in choices for source in all_sources())


def test_unknown_preset_names_every_tracks_presets(tmp_path, capsys):
    assert main(["curate", str(tmp_path), "--preset", "nope", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown preset 'nope'" in err
    for t in tracks():
        if t.has("presets"):
            assert all(name in err for name in t.get("presets")), t.name


@pytest.mark.parametrize("name", [t.name for t in tracks()])
def test_definitions_hold_every_tracks_own_definitions(name):
    from assets.definitions import defs

    own = next(t for t in tracks() if t.name == name).get("dagster")
    assert {j.name for j in own.jobs} <= {j.name for j in defs.jobs} and own.jobs
    assert {s.name for s in own.sensors} <= {s.name for s in defs.sensors} and own.sensors
    keys = {k for a in own.assets for k in a.keys}
    assert keys <= set(defs.resolve_asset_graph().get_all_asset_keys())


def test_a_fresh_dagster_loads_the_definitions_module_with_nothing_set(tmp_path):
    """What `dagster dev -m assets.definitions` loads: exactly one Definitions at module scope, no variable needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["DAGSTER_HOME"] = str(tmp_path)
    proc = subprocess.run([str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-m",
                           "assets.definitions"], env=env, cwd=Path(__file__).parents[1], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "Validation successful" in proc.stdout + proc.stderr, proc.stderr[-2000:]
