"""The partition protocol every track's prepare step follows: one ingest run (a CLI call, or one Dagster partition)
reads a list of files as one named partition of an ingest folder and owns a fixed range of shard ids.

`prepare_partition` is the driver: check the name and that the folder is writable, take the locks, reuse the
partition's manifest if it was prepared before from the same inputs (else a user error), or call the track's
`classify` and save the manifest it returns, last. A track supplies its reader and classify step (records ->
prepared rows and rejects, its manifest) and its shard jobs; manifests and stores are in `pipelines.core.
partitions_store`. Only the range of ids is allocated here, once; a rerun reuses it, so a crash or retry resumes
the same shards and sample keys stay unique across partitions for the life of the folder.

Locks (`pipelines.core.locks`), one rule for every track:
- the partition lock (`.locks/partition-<p>.lock`) is held for everything that writes the partition's files:
  prepare, download / cut / featurize, linking. A second run on the same partition waits (`wait=True`, Dagster)
  or stops with one line naming the holder (the CLI's default);
- the folder lock (`.locks/ingest-folder.lock`) only while a step reads other partitions' state, allocates shard
  ids and writes its manifest, and while folder-wide files are rewritten. It is taken inside a partition lock,
  never the other way round, and always waits. A plain `Classify` step runs whole under it (video, molecules).
  An `OutsideLock` step (pairs and the images of documents) holds it twice, briefly: once to take the snapshot of
  the partitions saved so far, once to settle and save; its classify runs between, under the partition lock only.

Partition order is the order manifests are saved (= shard-id order). A partition's earlier partitions are exactly
those saved before its own manifest: the snapshot plus any saved while it classified. `settle` sees the latter
(`added`) under the lock and re-checks against them, so two preparations of different partitions running at once
get the same outcome as running them one after another in the order they save.
"""

from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from pipelines.core.errors import TesseraUserError
from pipelines.core.locks import folder_lock, partition_lock
from pipelines.core.partitions_store import ManifestStore, Option, SourceManifest, check_same_inputs

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

Classify = Callable[[Path, str], SourceManifest]  # (ingest folder, partition name) -> the manifest to save


@dataclass(frozen=True)
class OutsideLock:
    """A classify step that runs outside the folder lock: `classify(out, name, earlier)` against a snapshot of the
    manifests saved so far (a draft manifest), then under the lock `settle(out, draft, added)` with the manifests saved
    since (re-check against them, allocate shard ids) gives the manifest to save."""

    classify: Callable[[Path, str, list], SourceManifest]
    settle: Callable[[Path, SourceManifest, list], SourceManifest]


def check_partition_name(name: str) -> str:
    """A partition name becomes file names: letters, digits and `._+-` only."""
    if not _SAFE.match(name):
        raise TesseraUserError(f"--partition {name!r}: use letters, digits, '.', '_', '+' and '-' only")
    return name


def default_partition_name(files: Sequence[Path], endings: Iterable[str] = ()) -> str:
    """A filesystem-safe name from the file names, without the longest of `endings` that matches (a track's input
    formats, e.g. `.csv.gz`) and then `.parquet`: the stem for one file, else the first stem plus a count."""
    endings = sorted(endings, key=len, reverse=True)
    stems = []
    for f in files:
        name = Path(f).name
        name = next((name.removesuffix(e) for e in endings if name.endswith(e)), name)
        stems.append(re.sub(r"[^A-Za-z0-9._-]+", "_", name.removesuffix(".parquet")))
    return stems[0] if len(stems) == 1 else f"{stems[0]}+{len(stems) - 1}"


def check_writable(out: Path) -> Path:
    """Create `out` if needed and make sure we can write there; a user error otherwise."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise TesseraUserError(f"cannot write to output folder {out}: {err.strerror or err}") from None
    return out


@contextmanager
def open_partition(out: Path, files: Sequence[Path], *, partition: str | None = None, endings: Iterable[str] = (),
                   wait: bool = False) -> Iterator[tuple[Path, str]]:
    """Name the partition (`--partition`, checked, or from the files), check `out` is writable and hold the
    partition's lock for the block; yields (out, name)."""
    name = check_partition_name(partition) if partition else default_partition_name(files, endings)
    out = check_writable(out)
    with partition_lock(out, name, wait=wait):
        yield out, name


def reuse_or_prepare(store: ManifestStore, out: Path, name: str, *, files: Sequence[Path], source: str,
                     classify: Classify | OutsideLock, options: Iterable[Option] = (),
                     before: Callable[[Path], object] | None = None, reads_folder: bool = True) -> SourceManifest:
    """The manifest of `name` if it was prepared from the same inputs, else `classify(out, name)`, saved last.

    Under the folder lock when the step reads other partitions or allocates shard ids (`reads_folder`); `before(out)`
    runs first under the same lock (a folder-wide setting check). An `OutsideLock` step classifies between two short
    holds of the folder lock (snapshot, then settle and save)."""
    with folder_lock(out) if reads_folder else nullcontext():
        if before is not None:
            before(out)
        existing = store.get(out, name)
        if existing is not None:
            check_same_inputs(existing, out, files, source, options)
            return existing
        if not isinstance(classify, OutsideLock):
            manifest = classify(out, name)
            store.save(out, manifest)
            return manifest
        earlier = store.load(out)
    draft = classify.classify(out, name, earlier)  # the caller holds the partition lock: nobody else writes `name`
    with folder_lock(out):
        seen = {m.name for m in earlier}
        manifest = classify.settle(out, draft, [m for m in store.load(out) if m.name not in seen])
        store.save(out, manifest)
        return manifest


def prepare_partition(store: ManifestStore, files: Sequence[Path], out: Path, *, source: str,
                      classify: Classify | OutsideLock,
                      partition: str | None = None, endings: Iterable[str] = (), options: Iterable[Option] = (),
                      before: Callable[[Path], object] | None = None, wait: bool = False) -> SourceManifest:
    """Validate name and folder, lock the partition, then reuse its manifest or classify and save it (the driver
    every track's prepare calls; validate the files and options first)."""
    files = [Path(f) for f in files]
    with open_partition(out, files, partition=partition, endings=endings, wait=wait) as (out, name):
        return reuse_or_prepare(store, out, name, files=files, source=source, classify=classify, options=options,
                                before=before)
