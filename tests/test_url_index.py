"""Incremental URL dedup through the URL-hash index gives the same prepared rows and reject ledger, key for key, as
the join of each partition against every earlier prepared file (the query the index replaced, kept here as oracle)."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
from conftest import write_parquet

from pipelines.core import schema as S
from pipelines.core.partitions_store import earlier_prepared_files
from pipelines.core.sql import connect, literal, path_list
from pipelines.ingest import url_index
from pipelines.ingest.metadata_preparer import MetadataPreparer
from pipelines.ingest.partitions import PAIR_PARTITIONS, prepared_file
from pipelines.ingest.sources import canonical_select, get_source, validate_files

# The classification before the index: a LEFT JOIN of the partition's URLs against every earlier prepared file.
ORACLE = """
CREATE OR REPLACE TEMP TABLE classified AS
WITH ranked AS (
    SELECT m.*, row_number() OVER w AS url_rank, first_value(m.input_file || '#' || m.input_row) OVER w AS first_ref
    FROM metadata m WINDOW w AS (PARTITION BY m.url ORDER BY m.file_ord, m.input_row)
),
reasoned AS (
    SELECT r.*, e.ref AS earlier_ref,
        CASE
            WHEN r.url IS NULL OR trim(r.url) = '' THEN 'missing_url'
            WHEN NOT regexp_matches(r.url, '^https?://[^/\\s?#]+([/?#]\\S*)?$', 'i') THEN 'invalid_url'
            WHEN e.url IS NOT NULL THEN 'duplicate_url_earlier_partition'
            WHEN r.url_rank > 1 THEN 'duplicate_url'
        END AS reason
    FROM ranked r LEFT JOIN earlier_urls e ON r.url = e.url
)
SELECT * EXCLUDE (url_rank, first_ref, earlier_ref),
    CASE reason WHEN 'duplicate_url_earlier_partition' THEN earlier_ref WHEN 'duplicate_url' THEN first_ref
    END AS duplicate_of
FROM reasoned ORDER BY file_ord, input_row
"""


def _oracle(out, source_name, files, name) -> None:
    """Prepare `name` into `out` the way the code before the URL index did (prepared and rejects files only)."""
    source, files = get_source(source_name), [f.resolve() for f in files]
    columns = validate_files(files, source)
    con = connect()
    order = ", ".join(f"({literal(f)}, {i})" for i, f in enumerate(files))
    con.execute(f"""CREATE VIEW metadata AS SELECT {canonical_select(source, columns)}, r.filename AS input_file,
        r.file_row_number AS input_row, o.file_ord
        FROM read_parquet({path_list(files)}, filename=true, file_row_number=true, union_by_name=true) r
        JOIN (VALUES {order}) o(fname, file_ord) ON r.filename = o.fname""")
    earlier = sorted((out / S.PREPARED_DIR).glob("*.parquet"))
    con.execute("CREATE VIEW earlier_urls AS " + (
        f"SELECT url, input_file || '#' || input_row AS ref FROM read_parquet({path_list(earlier)})" if earlier
        else "SELECT NULL::VARCHAR AS url, NULL::VARCHAR AS ref WHERE false"))
    con.execute(ORACLE)
    ledger = ", ".join(S.REJECT_COLUMNS)
    for folder, query in (
        (S.PREPARED_DIR, f"SELECT * EXCLUDE (file_ord, {S.REASON}, {S.DUPLICATE_OF}) FROM classified "
                         f"WHERE {S.REASON} IS NULL ORDER BY file_ord, input_row"),
        (S.REJECTS_DIR, f"SELECT {ledger}, * EXCLUDE ({ledger}, file_ord) FROM classified "
                        f"WHERE {S.REASON} IS NOT NULL ORDER BY file_ord, input_row"),
    ):
        (out / folder).mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({query}) TO {literal(out / folder / f'{name}.parquet')} (FORMAT parquet)")


def _inputs(tmp_path) -> list[tuple[str, list]]:
    """Three partitions: duplicates within a file, across files, across partitions; invalid and missing URLs."""
    u = [f"http://h{i % 3}.example/{i}.jpg" for i in range(12)]
    rows = {
        "a1": [u[0], u[1], u[0], None, "ftp://x/1.jpg", u[2], "", u[3]],
        "a2": [u[1], u[4], u[4], "http:// bad", u[5]],
        "b1": [u[4], u[6], u[0], u[6], u[7], "ftp://x/1.jpg", u[8]],
        "c1": [u[8], u[9], u[2], u[10], u[9], None, u[1]],
        "c2": [u[11], u[10], u[6], u[11]],
    }
    files = {k: write_parquet(tmp_path / "in" / f"{k}.parquet",
                              [{"URL": url, "TEXT": f"{k} {i}"} for i, url in enumerate(v)]) for k, v in rows.items()}
    return [("a", [files["a1"], files["a2"]]), ("b", [files["b1"]]), ("c", [files["c1"], files["c2"]])]


def _same_files(new, old, names) -> None:
    for folder in (S.PREPARED_DIR, S.REJECTS_DIR):
        for name in names:
            got = pq.read_table(new / folder / f"{name}.parquet").to_pylist()
            want = pq.read_table(old / folder / f"{name}.parquet").to_pylist()
            assert got == want, (folder, name)


def test_index_gives_todays_winners_and_ledger_key_for_key(tmp_path):
    parts, new, old = _inputs(tmp_path), tmp_path / "new", tmp_path / "old"
    manifests = [MetadataPreparer(new, 2).prepare("laion", files, name) for name, files in parts]
    for name, files in parts:
        _oracle(old, "laion", files, name)
    _same_files(new, old, [n for n, _ in parts])
    reasons = {r[S.REASON] for n, _ in parts for r in pq.read_table(new / S.REJECTS_DIR / f"{n}.parquet").to_pylist()}
    assert reasons == {"missing_url", "invalid_url", "duplicate_url", "duplicate_url_earlier_partition"}
    # each partition's index holds exactly its kept rows, 24 B of hash + ref each, and is marked
    for m in manifests:
        buckets = url_index.read_json(url_index.marker_file(new, m.name))["buckets"]
        entries = [pq.read_table(url_index.bucket_file(new, int(b), m.name)) for b in buckets]
        assert sum(t.num_rows for t in entries) == m.accepted == sum(buckets.values())
        assert all(t.column_names == ["h_hi", "h_lo", "ref"] and t.schema.field("ref").type == "uint64"
                   for t in entries)


def test_folder_from_before_the_index_builds_it_once_on_first_need(tmp_path):
    parts, new, old = _inputs(tmp_path), tmp_path / "new", tmp_path / "old"
    for name, files in parts[:2]:
        MetadataPreparer(new, 2).prepare("laion", files, name)
    shutil.rmtree(new / url_index.INDEX_DIR)  # what the code before the index left
    MetadataPreparer(new, 2).prepare("laion", *parts[2][1:], parts[2][0])
    for name, files in parts:
        _oracle(old, "laion", files, name)
    _same_files(new, old, ["c"])
    assert all(url_index.marker_file(new, n).exists() for n, _ in parts)
    assert earlier_prepared_files(PAIR_PARTITIONS, new, prepared_file)[0] == prepared_file(new, "a")


def test_partition_saved_while_another_classified_is_settled_as_if_run_in_order(tmp_path):
    parts, new, old = _inputs(tmp_path), tmp_path / "new", tmp_path / "old"
    (a, a_files), (b, b_files), (c, c_files) = parts
    preparer = MetadataPreparer(new, 2)
    draft_b = preparer.classify("laion", b_files, b, [])  # b classified before a's manifest existed
    draft_c = preparer.classify("laion", c_files, c, [])
    first = preparer.prepare("laion", a_files, a)  # a saved meanwhile: it is earlier than b
    mtime = prepared_file(new, b).stat().st_mtime_ns
    settled_b = preparer.settle("laion", b_files, draft_b, [first])
    PAIR_PARTITIONS.save(new, settled_b)
    assert prepared_file(new, b).stat().st_mtime_ns != mtime  # b shares URLs with a: classified again
    settled_c = preparer.settle("laion", c_files, draft_c, [first, settled_b])
    PAIR_PARTITIONS.save(new, settled_c)
    for name, files in parts:
        _oracle(old, "laion", files, name)
    _same_files(new, old, [a, b, c])
    assert settled_b.start_shard_id == first.start_shard_id + first.n_shards
    assert settled_c.start_shard_id == settled_b.start_shard_id + settled_b.n_shards


def test_settle_keeps_the_draft_when_the_partitions_saved_meanwhile_share_no_url(tmp_path):
    one = write_parquet(tmp_path / "one.parquet", [{"URL": "http://h/1.jpg", "TEXT": "one"}])
    two = write_parquet(tmp_path / "two.parquet", [{"URL": "http://h/2.jpg", "TEXT": "two"}])
    preparer = MetadataPreparer(tmp_path / "out", 1)
    draft = preparer.classify("laion", [two], "two", [])
    first = preparer.prepare("laion", [one], "one")
    mtime = prepared_file(tmp_path / "out", "two").stat().st_mtime_ns
    settled = preparer.settle("laion", [two], draft, [first])
    assert prepared_file(tmp_path / "out", "two").stat().st_mtime_ns == mtime
    assert settled.start_shard_id == 1 and settled.accepted == 1
