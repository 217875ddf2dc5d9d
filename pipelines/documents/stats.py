"""Document counts per outcome and the accounting invariant, by DuckDB over an ingest or a curation folder.

`tessera stats OUT` adds these tables when OUT holds documents; the Dagster checks run the same SQL.
"""

from __future__ import annotations

from pathlib import Path


from pipelines.core.shard_io import read_json
from pipelines.core.sql import connect, literal, parquet_view, path_list, query_rows
from pipelines.documents import schema as D
from pipelines.documents.ingest import DOCUMENT_PARTITIONS, doc_file


def has_documents(out: Path) -> bool:
    """True when `out` is an ingest folder with documents or a document curation folder."""
    out = Path(out)
    return any((out / D.DOCS_DIR).glob("*.json")) or (out / "doc_ledger.parquet").exists()


def _manifests_view(con, ingest_out: Path) -> list:
    manifests = [m for m in DOCUMENT_PARTITIONS.load(ingest_out)
                 if doc_file(ingest_out, m.name, "doc_outcomes").exists()]
    rows = [(m.name, m.input_documents, m.image_occurrences) for m in manifests] or [("", 0, 0)]
    values = ", ".join(f"({literal(n)}, {d}, {i})" for n, d, i in rows)
    con.execute(f"CREATE VIEW manifests AS SELECT * FROM (VALUES {values}) v(name, input_documents, "
                "image_occurrences)")
    return manifests


def ingest_document_stats(out: Path) -> dict:
    """Outcomes and accounting of the documents of an ingest folder."""
    out = Path(out)
    con = connect()
    manifests = _manifests_view(con, out)
    names = [m.name for m in manifests]
    for view, kind in (("doc_outcomes", "doc_outcomes"), ("image_outcomes", "image_outcomes")):
        files = [doc_file(out, n, kind) for n in names]
        parquet_view(con, view, files, "SELECT NULL::VARCHAR input_file, NULL::BIGINT input_row, NULL::VARCHAR doc_id, "
                     "NULL::INTEGER item, NULL::VARCHAR outcome, NULL::VARCHAR reason WHERE false")
    return {"document_outcomes": query_rows(con, "documents_outcomes"),
            "document_accounting": query_rows(con, "documents_accounting")[0]}


def curate_document_stats(out: Path) -> dict:
    """Outcomes and accounting of a document curation folder."""
    out = Path(out)
    summary = read_json(out / "documents_summary.json", {})
    con = connect()
    _manifests_view(con, Path(summary.get("ingest_out", out)))
    con.execute(f"CREATE VIEW doc_ledger AS SELECT * FROM read_parquet({path_list([out / 'doc_ledger.parquet'])})")
    con.execute(f"CREATE VIEW image_ledger AS SELECT * FROM read_parquet({path_list([out / 'image_ledger.parquet'])})")
    con.execute(f"CREATE VIEW curated AS SELECT key FROM read_parquet("
                f"{path_list([out / 'curated' / 'document_images.parquet'])})")
    con.execute("CREATE VIEW doc_outcomes AS SELECT * FROM doc_ledger")
    con.execute("CREATE VIEW image_outcomes AS SELECT * FROM image_ledger")
    headline = {k: summary.get(k) for k in ("preset", "documents", "kept", "images", "image_occurrences_kept",
                                             "images_kept")}
    return {**headline, "document_outcomes": query_rows(con, "documents_outcomes"),
            "document_accounting": {**query_rows(con, "documents_accounting")[0],
                                    **query_rows(con, "documents_curate_accounting")[0]}}


def accounting_holds(acc: dict) -> bool:
    """The invariant: every document and image occurrence accounted once, kept images = curated keys."""
    return (acc["documents_expected"] == acc["documents_accounted"] and acc["images_expected"] ==
            acc["images_accounted"] and not acc["documents_duplicated"] and not acc["images_duplicated"]
            and not acc.get("kept_not_curated") and not acc.get("curated_not_kept"))
