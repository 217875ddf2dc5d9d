"""The molecule layout, column names, outcomes and reasons shared by every molecule stage.

Molecule ingest folder (`tessera mol ingest --out OUT`):
- `OUT/molecule_partitions/<p>.prepared.parquet` every input record of partition p in input order (PREPARED_SCHEMA):
  the record text (SMILES or SDF mol block), its canonical SMILES, InChIKey, heavy-atom count, the reason it was
  dropped before featurization (if any) and the output shard it belongs to;
- `OUT/molecule_partitions/<p>.json` the partition manifest (files, options, counts, shard range), written last;
- `OUT/molecules/NNNNN.parquet` one row per kept molecule (SHARD_SCHEMA): MoleBLEND's per-molecule tensors,
  flattened row-major, their shapes given by num_atoms (N) and num_edges (E, both bond directions);
- `OUT/molecules/NNNNN.ledger.parquet` one row per input record of that shard (LEDGER_SCHEMA): kept or dropped;
- `OUT/molecules/NNNNN_stats.json` the shard job's marker, written after both files verify.
A molecule's key is its InChIKey (never its position).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

PARTITIONS_DIR = "molecule_partitions"
MOLECULES_DIR = "molecules"

KEPT, DROPPED = "kept", "dropped"

# Drop reasons (GROUP BY keys).
UNPARSABLE = "unparsable"  # RDKit cannot read the SMILES / mol block (or it is empty)
SANITIZATION_ERROR = "sanitization_error"  # read, but RDKit sanitization rejects it (valence, aromaticity, ...)
TOO_MANY_ATOMS = "too_many_atoms"  # more heavy atoms than --max-atoms
DUPLICATE_INCHIKEY = "duplicate_inchikey"  # the same InChIKey was kept earlier (detail names it and where)
EMBEDDING_FAILED = "embedding_failed"  # no 3D conformer from ETKDG nor random coordinates
FEATURIZATION_ERROR = "featurization_error"  # a value OGB's feature lists cannot index (OGB raises too)
REASONS = (UNPARSABLE, SANITIZATION_ERROR, TOO_MANY_ATOMS, DUPLICATE_INCHIKEY, EMBEDDING_FAILED, FEATURIZATION_ERROR)

SMILES, SDF = "smiles", "sdf"  # record kinds

PREPARED_SCHEMA = pa.schema([
    ("input_file", pa.string()), ("input_row", pa.int64()), ("kind", pa.string()), ("record", pa.string()),
    ("y", pa.float64()), ("canonical_smiles", pa.string()), ("inchikey", pa.string()), ("num_atoms", pa.int32()),
    ("reason", pa.string()), ("detail", pa.string()), ("shard", pa.int32()),
])

LEDGER_SCHEMA = pa.schema([
    ("input_file", pa.string()), ("input_row", pa.int64()), ("key", pa.string()), ("status", pa.string()),
    ("reason", pa.string()), ("detail", pa.string()), ("canonical_smiles", pa.string()), ("num_atoms", pa.int32()),
    ("conformer_method", pa.string()),
])

# Tensor columns: name -> (arrow value type, numpy dtype, shape in terms of N atoms and E directed edges).
TENSORS = {
    "x": (pa.int16(), np.int64, ("N", 9)),
    "edge_index": (pa.int16(), np.int64, (2, "E")),
    "edge_attr": (pa.int8(), np.int64, ("E", 3)),
    "attn_edge_type": (pa.int16(), np.int64, ("N", "N", 3)),
    "spatial_pos": (pa.int16(), np.int64, ("N", "N")),
    "sp_path": (pa.int16(), np.int64, ("N", "N")),
    "in_degree": (pa.int16(), np.int64, ("N",)),
    "pos": (pa.float32(), np.float32, ("N", 3)),
    "distance": (pa.float32(), np.float32, ("N", "N")),
}

SHARD_SCHEMA = pa.schema(
    [("key", pa.string()), ("input_file", pa.string()), ("input_row", pa.int64()), ("smiles", pa.string()),
     ("canonical_smiles", pa.string()), ("y", pa.float64()), ("num_atoms", pa.int32()), ("num_edges", pa.int32()),
     ("conformer_method", pa.string())]
    + [(name, pa.list_(t)) for name, (t, _, _) in TENSORS.items()],
    metadata={b"tessera.shapes": repr({k: v[2] for k, v in TENSORS.items()}).encode()},
)


def shape_of(name: str, n: int, e: int) -> tuple[int, ...]:
    """The shape of tensor column `name` for a molecule of n atoms and e directed edges."""
    return tuple(n if d == "N" else e if d == "E" else d for d in TENSORS[name][2])


def tensors(row: dict) -> dict[str, np.ndarray]:
    """A shard row's tensor columns as numpy arrays of their shapes (int64 / float32, as MoleBLEND's tensors)."""
    n, e = row["num_atoms"], row["num_edges"]
    return {name: np.asarray(row[name], dtype=dtype).reshape(shape_of(name, n, e))
            for name, (_, dtype, _) in TENSORS.items()}
