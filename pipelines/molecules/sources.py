"""Reading molecule inputs: SMILES tables (CSV, CSV.gz, parquet; PCQM4Mv2's `data.csv.gz` has `smiles` and
`homolumogap`) and SDF files (one record per mol block, its 3D coordinates kept). Records come in input order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipelines.core.errors import TesseraUserError
from pipelines.molecules import schema as M

TARGET_COLUMN = "homolumogap"  # PCQM4Mv2's regression target, kept as `y` when the table has it
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".sdf")


@dataclass(frozen=True)
class Record:
    """One input molecule: where it was, its kind (smiles/sdf), its text and its target (if any)."""

    input_file: str
    input_row: int
    kind: str
    record: str | None
    y: float | None


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".sdf"):
        return M.SDF
    if name.endswith((".csv", ".csv.gz", ".parquet")):
        return M.SMILES
    raise TesseraUserError(f"{path}: molecule inputs are {', '.join(SUFFIXES)} files")


def _read_table(path: Path, smiles_column: str):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.name.lower().endswith(".parquet"):
            names = pq.read_schema(path).names
        else:
            names = pacsv.open_csv(path).schema.names
    except Exception as err:  # noqa: BLE001 - any reader failure is the file's fault; say which file
        raise TesseraUserError(f"{path} cannot be read as a table ({type(err).__name__}: {err})") from None
    if smiles_column not in names:
        raise TesseraUserError(f"{path} has no column {smiles_column!r} (columns: {', '.join(names)}); "
                               "pass --smiles-column")
    columns = [smiles_column] + ([TARGET_COLUMN] if TARGET_COLUMN in names else [])
    if path.name.lower().endswith(".parquet"):
        return pq.read_table(path, columns=columns), columns
    convert = pacsv.ConvertOptions(include_columns=columns, column_types={smiles_column: "string"})
    return pacsv.read_csv(path, convert_options=convert), columns


def check_molecule_files(files: list[Path], smiles_column: str) -> None:
    """Every input exists, has a known ending, and (tables) has the SMILES column; a user error otherwise."""
    if not files:
        raise TesseraUserError("no input files (pass --input FILE [FILE...])")
    for path in files:
        if not path.is_file():
            raise TesseraUserError(f"no such input file: {path}")
        if _kind(path) == M.SMILES:
            _read_table(path, smiles_column)


def read_records(files: list[Path], smiles_column: str) -> Iterator[Record]:
    """Every record of every file, in order; SDF records as their mol block text (RDKit parses them later)."""
    for path in files:
        name = str(Path(path).resolve())
        if _kind(path) == M.SDF:
            from rdkit import Chem

            supplier = Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)
            for i in range(len(supplier)):
                yield Record(name, i, M.SDF, supplier.GetItemText(i), None)
            continue
        table, columns = _read_table(path, smiles_column)
        smiles = table[smiles_column].to_pylist()
        ys = table[TARGET_COLUMN].to_pylist() if len(columns) > 1 else [None] * len(smiles)
        for i, (s, y) in enumerate(zip(smiles, ys)):
            yield Record(name, i, M.SMILES, s, float(y) if y is not None else None)
