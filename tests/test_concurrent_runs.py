"""Two `tessera ingest` runs on the same partition at once: one stops with one line naming the other, or, with
`--wait`, waits for it; either way the folder ends up exactly as one uninterrupted run leaves it."""

from __future__ import annotations

import time

import pyarrow.parquet as pq
import pytest
from crash_fixture import assert_ingest_equal, ingest_args, reference_ingest, start, tar_members

from pipelines.core import schema as S
from pipelines.core.shards import complete_shards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory, www, base_url):
    return reference_ingest(tmp_path_factory, www, base_url)


def _two_runs(args: list[str]):
    first = start(args)
    time.sleep(0.5)
    second = start(args)
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=240)
        results.append((proc, out, err))
    return results


def _tars_match_sidecars(out) -> None:
    for shard in complete_shards(out):
        rows = pq.read_table(shard.parquet, columns=[S.KEY, S.STATUS]).to_pylist()
        assert set(tar_members(shard.tar)) == {r[S.KEY] for r in rows if r[S.STATUS] == S.STATUS_SUCCESS}


def test_second_run_stops_with_one_line_naming_the_first(reference, tmp_path):
    meta, ref_out = reference
    out = tmp_path / "out"
    results = _two_runs(ingest_args(meta, out))
    assert sorted(p.returncode for p, _, _ in results) == [0, 2], [(p.returncode, e) for p, _, e in results]
    (loser, _, err), = [r for r in results if r[0].returncode == 2]
    (winner, _, _), = [r for r in results if r[0].returncode == 0]
    assert err.count("\n") == 1 and err.startswith("tessera: error: "), err
    assert "is being written by" in err and f"pid {winner.pid} " in err and "--wait" in err
    assert "Traceback" not in err
    _tars_match_sidecars(out)
    assert_ingest_equal(out, ref_out)  # accounting zeros, no duplicate key, same rows and bytes


def test_both_runs_finish_with_wait(reference, tmp_path):
    meta, ref_out = reference
    out = tmp_path / "out"
    results = _two_runs(ingest_args(meta, out, "--wait"))
    assert [p.returncode for p, _, _ in results] == [0, 0], [e for _, _, e in results]
    assert all("Traceback" not in err for _, _, err in results)
    assert any("tessera: waiting for partition 'crash'" in err for _, _, err in results)
    _tars_match_sidecars(out)
    assert_ingest_equal(out, ref_out)
