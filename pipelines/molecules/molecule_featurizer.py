"""MoleculeFeaturizer: prepared records -> MoleBLEND's 2D features, relation matrices, 3D positions and distances."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from pipelines.core.stage import Stage, StageConfig
from pipelines.molecules import conformers as C
from pipelines.molecules import schema as M
from pipelines.molecules.features import FeaturizationError, distance_matrix, mol_to_graph, preprocess_item
from pipelines.molecules.parse import BadRecord, parse

OUTPUT_SCHEMA = pa.schema(list(M.LEDGER_SCHEMA) + [f for f in M.SHARD_SCHEMA if f.name not in M.LEDGER_SCHEMA.names])


class MoleculeFeaturizerConfig(StageConfig):
    """Seed of the conformer search, whether to make 3D coordinates for records without them, ETKDG's time limit."""

    seed: int = 0
    embed_3d: bool = True
    embed_timeout_s: int = 60


class MoleculeFeaturizer(Stage):
    """Featurize every record not dropped by the prepare pass; a failure becomes a dropped row with its reason."""

    config_cls: ClassVar[type[StageConfig]] = MoleculeFeaturizerConfig
    name: ClassVar[str] = "molecule_featurizer"

    def setup(self) -> None:
        from rdkit import RDLogger

        RDLogger.DisableLog("rdApp.*")  # force-field typing warnings would flood the log; outcomes are in the data

    def _positions(self, kind: str, mol) -> tuple[np.ndarray, str]:
        if kind == M.SDF and mol.GetNumConformers() and mol.GetConformer().Is3D():
            return mol.GetConformer().GetPositions().astype(np.float32), C.SDF
        if not self.config.embed_3d:
            return np.zeros((mol.GetNumAtoms(), 3), dtype=np.float32), C.NONE
        try:
            return C.embed_3d(mol, self.config.seed, self.config.embed_timeout_s)
        except C.EmbeddingFailed as err:
            raise BadRecord(M.EMBEDDING_FAILED, str(err)) from None

    def featurize(self, row: dict) -> dict:
        """One prepared record -> its output row (kept with tensors, or dropped with a reason)."""
        out = {name: row.get(name) for name in ("input_file", "input_row", "canonical_smiles", "num_atoms", "y")}
        out.update(key=row["inchikey"], smiles=row["record"] if row["kind"] == M.SMILES else None)
        if row["reason"] is not None:
            return {**out, "status": M.DROPPED, "reason": row["reason"], "detail": row["detail"]}
        try:
            mol = parse(row["kind"], row["record"])
            item = preprocess_item(mol_to_graph(mol))
            pos, method = self._positions(row["kind"], mol)
        except FeaturizationError as err:
            return {**out, "status": M.DROPPED, "reason": M.FEATURIZATION_ERROR, "detail": str(err)}
        except BadRecord as bad:
            return {**out, "status": M.DROPPED, "reason": bad.reason, "detail": bad.detail}
        item.update(pos=pos, distance=distance_matrix(pos) if method != C.NONE else
                    np.zeros((len(pos), len(pos)), dtype=np.float32))
        flat = {name: item[name].ravel().tolist() for name in M.TENSORS}
        return {**out, **flat, "status": M.KEPT, "reason": None, "detail": None, "conformer_method": method,
                "num_edges": int(item["edge_index"].shape[1])}

    def process(self, batch: pa.Table) -> pa.Table:
        rows = [self.featurize(r) for r in batch.to_pylist()]
        return pa.Table.from_pylist(rows, OUTPUT_SCHEMA)
