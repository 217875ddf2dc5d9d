"""The partition protocol every track prepares through (pipelines.core.partitions): names, stores, reuse, locks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.errors import TesseraUserError
from pipelines.core.locks import lock_path, try_exclusive
from pipelines.core.partitions import OutsideLock, check_partition_name, default_partition_name, prepare_partition
from pipelines.core.partitions_store import (
    ManifestStore, Option, PartitionManifest, check_same_inputs, earlier_keys, flag, finished_partitions,
)
from pipelines.molecules.prepare import MOLECULE_ENDINGS
from pipelines.video.partitions import VIDEO_ENDINGS

STORE = ManifestStore("parts", PartitionManifest)


def _manifest(name: str, start: int, n: int, files=("a.parquet",)) -> PartitionManifest:
    return PartitionManifest(name=name, source="laion", files=[str(Path(f).resolve()) for f in files], input_rows=n,
                             accepted=n, rejected=0, start_shard_id=start, n_shards=n, samples_per_shard=1)


def test_default_names_strip_each_tracks_endings():
    assert default_partition_name([Path("a b.parquet")]) == "a_b"
    assert default_partition_name([Path("m.csv.parquet"), Path("n.parquet")]) == "m.csv+1"
    assert default_partition_name([Path("w.csv.gz")], VIDEO_ENDINGS) == "w"
    assert default_partition_name([Path("w.gz.parquet")], VIDEO_ENDINGS) == "w.gz"
    assert default_partition_name([Path("x.sdf.gz")], MOLECULE_ENDINGS) == "x.sdf"
    assert default_partition_name([Path("x.sdf")], MOLECULE_ENDINGS) == "x"
    assert default_partition_name([Path("x.sdf")], VIDEO_ENDINGS) == "x.sdf"
    with pytest.raises(TesseraUserError, match="letters, digits"):
        check_partition_name("../up")


def test_store_loads_in_shard_order_and_allocates_after_the_last(tmp_path):
    STORE.save(tmp_path, _manifest("late", 3, 2))
    STORE.save(tmp_path, _manifest("early", 0, 3))
    assert [m.name for m in STORE.load(tmp_path)] == ["early", "late"]
    assert STORE.get(tmp_path, "late").shard_ids == range(3, 5) and STORE.get(tmp_path, "none") is None
    assert STORE.next_shard_id(tmp_path) == 5 and STORE.next_shard_id(tmp_path / "empty") == 0
    done, unfinished = finished_partitions(STORE.load(tmp_path), ["00000", "00001", "00002", "00003"])
    assert [m.name for m in done] == ["early"] and unfinished == "late"


def test_reuse_needs_the_same_files_source_and_options(tmp_path):
    m = _manifest("p", 0, 1)
    check_same_inputs(m, tmp_path, [Path("a.parquet")], "laion", [Option("samples_per_shard", 1, flag("--x"))])
    with pytest.raises(TesseraUserError, match=r"partition 'p' in .* was ingested from other files"):
        check_same_inputs(m, tmp_path, [Path("b.parquet")], "laion")
    with pytest.raises(TesseraUserError, match=r"ingested from other files"):
        check_same_inputs(m, tmp_path, [Path("a.parquet")], "coyo")
    with pytest.raises(TesseraUserError, match=r"was ingested with --x 1; rerun with the same options \(got --x 2\)"):
        check_same_inputs(m, tmp_path, [Path("a.parquet")], "laion", [Option("samples_per_shard", 2, flag("--x"))])


def test_earlier_keys_first_seen_and_kept_only(tmp_path):
    for name, start, reasons in (("one", 0, [None, "bad"]), ("two", 2, [None, None])):
        STORE.save(tmp_path, _manifest(name, start, 2))
        pq.write_table(pa.table({"k": ["a", "b"] if name == "one" else ["a", "c"], "input_file": ["f", "f"],
                                 "input_row": [0, 1], "reason": pa.array(reasons, pa.string())}),
                       tmp_path / f"{name}.parquet")
    prepared = lambda out, name: Path(out) / f"{name}.parquet"  # noqa: E731
    assert earlier_keys(STORE, tmp_path, prepared, "k") == {"a": "partition 'one' f#0", "b": "partition 'one' f#1",
                                                            "c": "partition 'two' f#1"}
    assert "b" not in earlier_keys(STORE, tmp_path, prepared, "k", kept_only=True)


def test_driver_classifies_once_under_both_locks_then_reuses(tmp_path):
    out, calls = tmp_path / "out", []

    def classify(out: Path, name: str) -> PartitionManifest:
        # both locks are held while a partition is classified (flock conflicts across open files of one process)
        calls.append((try_exclusive(lock_path(out, f"partition-{name}")),
                      try_exclusive(lock_path(out, "ingest-folder"))))
        return _manifest(name, STORE.next_shard_id(out), 2, files=[tmp_path / "w.csv.gz"])

    first = prepare_partition(STORE, [tmp_path / "w.csv.gz"], out, source="laion", classify=classify,
                              endings=VIDEO_ENDINGS)
    again = prepare_partition(STORE, [tmp_path / "w.csv.gz"], out, source="laion", classify=classify,
                              endings=VIDEO_ENDINGS)
    assert first == again and first.name == "w" and calls == [(False, False)]
    assert (out / "parts" / "w.json").exists()
    with pytest.raises(TesseraUserError, match="other files"):
        prepare_partition(STORE, [tmp_path / "v.csv"], out, source="laion", classify=classify, partition="w")


def test_outside_lock_step_classifies_without_the_folder_lock_and_settles_with_partitions_saved_meanwhile(tmp_path):
    out, seen = tmp_path / "out", {}

    def classify(out: Path, name: str, earlier: list) -> PartitionManifest:
        seen["locks"] = (try_exclusive(lock_path(out, f"partition-{name}")),
                         try_exclusive(lock_path(out, "ingest-folder")))
        seen["earlier"] = [m.name for m in earlier]
        STORE.save(out, _manifest("other", 0, 3))  # another run's partition, saved while this one classified
        return _manifest(name, -1, 2, files=[tmp_path / "a.parquet"])

    def settle(out: Path, draft: PartitionManifest, added: list) -> PartitionManifest:
        seen["added"] = [m.name for m in added]
        seen["settle_folder_lock_free"] = try_exclusive(lock_path(out, "ingest-folder"))
        return draft.model_copy(update={"start_shard_id": STORE.next_shard_id(out)})

    STORE.save(out, _manifest("first", 3, 1))
    got = prepare_partition(STORE, [tmp_path / "a.parquet"], out, source="laion", partition="p",
                            classify=OutsideLock(classify, settle))
    assert seen == {"locks": (False, True), "earlier": ["first"], "added": ["other"],
                    "settle_folder_lock_free": False}
    assert got.start_shard_id == 4 and STORE.get(out, "p") == got
    seen.clear()
    assert prepare_partition(STORE, [tmp_path / "a.parquet"], out, source="laion", partition="p",
                             classify=OutsideLock(classify, settle)) == got and seen == {}  # reused, not redone
