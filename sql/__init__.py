"""The DuckDB queries behind `tessera stats` and the asset checks (shipped as package data)."""
