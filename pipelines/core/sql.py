"""Loading the project's `.sql` files (the top-level `sql/` folder, installed as package data) for DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb

import sql as _sql_package

SQL_DIR = Path(_sql_package.__file__).resolve().parent


def sql_text(name: str) -> str:
    """The text of `sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def literal(value: str | Path) -> str:
    """A single-quoted SQL string literal (for paths in table functions, which take no parameters)."""
    return "'" + str(value).replace("'", "''") + "'"


def path_list(paths) -> str:
    """A DuckDB list literal of file paths."""
    return "[" + ", ".join(literal(p) for p in paths) + "]"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection (the data stays in the parquet/JSON files it reads)."""
    return duckdb.connect(database=":memory:")


def query_rows(con: duckdb.DuckDBPyConnection, name: str) -> list[dict]:
    """Run `sql/<name>.sql` on `con`; rows as dicts keyed by column name."""
    cur = con.execute(sql_text(name))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def parquet_view(con: duckdb.DuckDBPyConnection, view: str, paths, empty: str, columns: str = "*") -> None:
    """`view` over the parquet files `paths` (columns unioned by name), or the `empty` query when there is none."""
    paths = list(paths)
    con.execute(f"CREATE VIEW {view} AS SELECT {columns} FROM read_parquet({path_list(paths)}, union_by_name=true)"
                if paths else f"CREATE VIEW {view} AS {empty}")
