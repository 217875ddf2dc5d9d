"""One accounting for every track: each track builds its outcome views (`expected(level, n)`, `outcomes(level, unit,
key)`) on a DuckDB connection, `sql/accounting.sql` turns them into one row per level, and one predicate says whether
they all hold. The CLI summaries, `tessera stats`, the HTML report and the Dagster checks all read these rows.

A folder's rows are the union of its tracks' rows; each track's views sit on a connection of their own, since their
helper views (`rejects`, `manifests`...) may share names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping

import duckdb

from pipelines.core.sql import connect, literal, query_rows

FIELDS = ("expected", "accounted", "missing", "duplicated", "duplicate_keys")
UNIT = "input_file || '#' || input_row"  # the unit of a row-shaped input (a table row, a document, a record)
OutcomeViews = Callable[[duckdb.DuckDBPyConnection, Path], None]


def define_levels(con: duckdb.DuckDBPyConnection, levels: Mapping[str, tuple[int | str, str]]) -> None:
    """Create the outcome views from `{level: (expected, outcomes)}`: `expected` a count or a scalar SQL query,
    `outcomes` a SELECT of (unit, key) with one row per outcome of an input unit."""
    want = [f"SELECT {literal(lv)} AS level, ({n})::BIGINT AS n" for lv, (n, _) in levels.items()]
    got = [f"SELECT {literal(lv)} AS level, unit::VARCHAR AS unit, key::VARCHAR AS key FROM ({q})"
           for lv, (_, q) in levels.items()]
    con.execute("CREATE VIEW expected AS " + (" UNION ALL ".join(want) or _NO_LEVEL))
    con.execute("CREATE VIEW outcomes AS " + (" UNION ALL ".join(got) or _NO_OUTCOME))


_NO_LEVEL = "SELECT NULL::VARCHAR AS level, 0::BIGINT AS n WHERE false"
_NO_OUTCOME = "SELECT NULL::VARCHAR AS level, NULL::VARCHAR AS unit, NULL::VARCHAR AS key WHERE false"


def level_rows(con: duckdb.DuckDBPyConnection, track: str) -> list[dict]:
    """Run sql/accounting.sql over the outcome views already on `con`; one row per level, tagged with `track`."""
    return [{"track": track, **row} for row in query_rows(con, "accounting")]


def track_accounting(track: str, views: OutcomeViews, out: Path) -> list[dict]:
    """The level rows of one track over the folder `out`, on a fresh connection."""
    con = connect()
    views(con, Path(out))
    return level_rows(con, track)


def accounting_holds(rows: Iterable[dict]) -> bool:
    """True when no level has a missing or duplicated unit or a duplicate key."""
    return all(not (r["missing"] or r["duplicated"] or r["duplicate_keys"]) for r in rows)


def broken_levels(rows: Iterable[dict]) -> str:
    """The broken levels in a few words, e.g. "video rows: 2 missing; video clips: 1 duplicate_keys"."""
    parts = []
    for r in rows:
        bad = [f"{r[f]} {f}" for f in FIELDS[2:] if r[f]]
        if bad:
            parts.append(f"{r['track']} {r['level']}: {', '.join(bad)}")
    return "; ".join(parts)


def flat(rows: Iterable[dict]) -> dict:
    """The level rows as one flat dict of ints, `<level>_<field>` (e.g. rows_expected), for metadata and tables."""
    return {f"{r['level']}_{f}": int(r[f]) for r in rows for f in FIELDS}


def summary(rows: list[dict]) -> str:
    """The end-of-run words: `accounting holds.` or `accounting BROKEN (<broken levels>).`"""
    return "accounting holds." if accounting_holds(rows) else f"accounting BROKEN ({broken_levels(rows)})."
