"""3D coordinates for a molecule without them: ETKDG (seeded), then MMFF94, falling back to UFF; if ETKDG cannot
embed, the same with random initial coordinates. The method used is recorded with the molecule."""

from __future__ import annotations

import numpy as np

# conformer_method values (stable: GROUP BY keys). Embedding + force field; "sdf" = the input file's coordinates.
SDF = "sdf"
NONE = "none"  # --no-3d and no coordinates in the input: positions are zeros, as MoleBLEND stores them


class EmbeddingFailed(ValueError):
    """Neither ETKDG nor random-coordinate embedding produced a conformer."""


def _optimize(molh) -> str:
    from rdkit.Chem import AllChem

    if AllChem.MMFFHasAllMoleculeParams(molh):
        AllChem.MMFFOptimizeMolecule(molh, maxIters=500)
        return "mmff"
    if AllChem.UFFHasAllMoleculeParams(molh):
        AllChem.UFFOptimizeMolecule(molh, maxIters=500)
        return "uff"
    return ""


def embed_3d(mol, seed: int, timeout_s: int = 60) -> tuple[np.ndarray, str]:
    """Heavy-atom positions [N,3] (float32, the order of `mol`'s atoms) and the conformer_method that made them."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    molh = Chem.AddHs(mol)  # ETKDG and the force fields need explicit hydrogens; they are appended after atom N-1
    for embedding, random_coords in (("etkdg", False), ("random", True)):
        params = AllChem.ETKDGv3()
        params.randomSeed = seed
        params.useRandomCoords = random_coords
        params.timeout = timeout_s
        if AllChem.EmbedMolecule(molh, params) == 0:
            break
    else:
        raise EmbeddingFailed("ETKDG and random-coordinate embedding both failed")
    field = _optimize(molh)
    pos = molh.GetConformer().GetPositions()[: mol.GetNumAtoms()]
    return pos.astype(np.float32), f"{embedding}_{field}" if field else embedding
