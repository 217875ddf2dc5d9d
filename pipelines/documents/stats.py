"""Document counts per outcome and the document levels of the one accounting (sql/accounting.sql), by DuckDB over an
ingest or a curation folder.

`tessera stats OUT` adds these tables when OUT holds documents; the Dagster checks run the same SQL.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.shard_io import read_json
from pipelines.core.accounting import UNIT, define_levels, flat, level_rows
from pipelines.core.sql import connect, parquet_view, path_list, query_rows
from pipelines.documents import schema as D
from pipelines.documents.ingest import DOCUMENT_PARTITIONS, doc_file

# Titles of this track's `tessera stats` tables (its `stats_titles` role).
TITLES = {
    "document_outcomes": "Documents and their images per outcome",
    "document_accounting": "Document accounting (every document and image occurrence once)",
}


def has_documents(out: Path) -> bool:
    """True when `out` is an ingest folder with documents or a document curation folder."""
    out = Path(out)
    return any((out / D.DOCS_DIR).glob("*.json")) or (out / "doc_ledger.parquet").exists()


_EMPTY = ("SELECT NULL::VARCHAR input_file, NULL::BIGINT input_row, NULL::VARCHAR doc_id, NULL::INTEGER item, "
          "NULL::VARCHAR outcome, NULL::VARCHAR reason WHERE false")
_KEPT_IMAGES = "SELECT DISTINCT key FROM image_outcomes WHERE outcome = 'kept'"


def _is_curation(out: Path) -> bool:
    return (Path(out) / "doc_ledger.parquet").exists()


def _views(con, out: Path) -> None:
    """doc_outcomes and image_outcomes (an ingest folder's outcome files or a curation folder's ledgers) and levels
    `documents` (every input document once, doc_ids unique), `images` (every image occurrence of a parsed document
    once) and, for a curation folder, `curated_images` (its kept images are exactly its curated keys)."""
    summary = read_json(out / "documents_summary.json", {}) if _is_curation(out) else {}
    ingest_out = Path(summary.get("ingest_out", out))
    manifests = [m for m in DOCUMENT_PARTITIONS.load(ingest_out)
                 if doc_file(ingest_out, m.name, "doc_outcomes").exists()]
    levels = {"documents": (sum(m.input_documents for m in manifests),
                            f"SELECT {UNIT} AS unit, doc_id AS key FROM doc_outcomes"),
              "images": (sum(m.image_occurrences for m in manifests),
                         "SELECT doc_id || '#' || item AS unit, NULL AS key FROM image_outcomes")}
    if _is_curation(out):
        for view, name in (("doc_outcomes", "doc_ledger"), ("image_outcomes", "image_ledger")):
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet({path_list([out / f'{name}.parquet'])})")
        con.execute(f"CREATE VIEW curated AS SELECT key FROM read_parquet("
                    f"{path_list([out / 'curated' / 'document_images.parquet'])})")
        # expected: kept keys and curated keys together; accounted: the curated keys that are kept
        levels["curated_images"] = (f"SELECT count(*) FROM ({_KEPT_IMAGES} UNION SELECT key FROM curated)",
                                    f"SELECT key AS unit, key FROM curated SEMI JOIN ({_KEPT_IMAGES}) k USING (key)")
    else:
        for view in ("doc_outcomes", "image_outcomes"):
            parquet_view(con, view, [doc_file(out, m.name, view) for m in manifests], _EMPTY)
    define_levels(con, levels)


def document_outcome_views(con, out: Path) -> None:
    """The document levels of an ingest or a curation folder (see `_views`)."""
    _views(con, Path(out))


def document_stats(out: Path) -> dict:
    """Headline counts, outcomes and accounting of the documents of an ingest folder or a curation folder."""
    out = Path(out)
    con = connect()
    _views(con, out)
    outcomes = query_rows(con, "documents_outcomes")
    docs = {o: sum(r["n"] for r in outcomes if r["what"] == "document" and r["outcome"] == o)
            for o in ("kept", "dropped", "rejected")}
    curation = _is_curation(out)
    headline = {"input_rows": sum(docs.values()), "success": docs["kept"],
                "failed": 0 if curation else docs["dropped"],
                "rejected": docs["rejected"] + (docs["dropped"] if curation else 0),
                "shards": len(list((out / D.DOCS_DIR).glob("*_stats.json"))) if curation else 0}
    if curation:
        summary = read_json(out / "documents_summary.json", {})
        headline.update({k: summary.get(k) for k in ("preset", "documents", "kept", "images",
                                                      "image_occurrences_kept", "images_kept")})
    return {**headline, "document_outcomes": outcomes, "document_accounting": flat(level_rows(con, "documents"))}
