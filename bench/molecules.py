"""Molecule speed: `tessera mol ingest` (parse, sanitize, InChIKey dedup, OGB features, SPD/edge relations, and
with 3D an ETKDG conformer + MMFF/UFF and the distance matrix) in molecules/s, with and without 3D, on 1 and on
`--workers` cores (default 2). Inputs: drug-like SMILES bundled here, each also decorated with a methyl, fluoro,
chloro and methoxy group on its first aromatic CH (5 distinct molecules per drug). Prints numbers; the last line is
one JSON object.
"""

from __future__ import annotations

import sys

# Not bench/ itself on the path: a sibling script's name (bench/tokenize.py) would shadow the stdlib module.
_REPO = __file__.rsplit("/bench/", 1)[0]
sys.path[:1] = [_REPO]

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

DRUGS = [
    "CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "CC(=O)Nc1ccc(O)cc1", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "COc1ccc2[nH]cc(CCNC(C)=O)c2c1", "CN1CCC[C@H]1c1cccnc1", "COc1ccc2cc(ccc2c1)[C@H](C)C(=O)O",
    "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl", "CN(C)C(=N)NC(=N)N", "CCOC(=O)C1=C(C)NC(C)=C(C1c1ccccc1Cl)C(=O)OC",
    "Clc1ccc(cc1)C(c1ccccc1)N1CCN(CCOCC(=O)O)CC1", "CN1CCN(CC1)C1=Nc2cc(Cl)ccc2Nc2ccccc12",
    "CC(C)NCC(O)COc1cccc2ccccc12", "O=C(O)c1ccccc1O", "NS(=O)(=O)c1cc(C(=O)O)c(NCc2ccco2)cc1Cl",
    "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc12", "Cc1ccc(cc1)S(=O)(=O)NC(=O)NN1CCCCCC1",
    "COc1cc2c(cc1OC)C(=O)C(CC1CCN(Cc3ccccc3)CC1)C2", "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",
    "OC(c1ccccc1)(c1ccccc1)C1CCN(CCCC(=O)c2ccc(F)cc2)CC1", "Fc1ccc(cc1)C(=O)CCCN1CCC(O)(CC1)c1ccc(Cl)cc1",
    "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1", "CN(C)CCCN1c2ccccc2CCc2ccccc12", "CCN(CC)CC(=O)Nc1c(C)cccc1C",
    "Nc1ccc(cc1)S(=O)(=O)Nc1ccnc(n1)", "Cc1onc(c1C(=O)N[C@@H]1C(=O)N2[C@@H](C(=O)O)C(C)(C)S[C@H]12)-c1ccccc1",
    "OC(=O)c1cn(C2CC2)c2cc(N3CCNCC3)c(F)cc2c1=O", "Cc1ncc([N+](=O)[O-])n1CCO", "NC(=O)c1cnccn1",
    "OC(=O)CCCc1ccc(cc1)N(CCCl)CCCl", "Cn1c(=O)c2c(ncn2C)n(C)c1=O",
    "COc1ccc(CCN(C)CCCC(C#N)(C(C)C)c2ccc(OC)c(OC)c2)cc1OC",
    "CC(=O)NC1=CC=C(C=C1)OCC", "O=C1CN=C(c2ccccc2F)c2cc(Cl)ccc2N1", "CC12CCC3c4ccc(O)cc4CCC3C1CCC2O",
    "CC(C)OC(=O)C(C)(C)Oc1ccc(cc1)C(=O)c1ccc(Cl)cc1", "Oc1ccc(cc1)C1(c2ccccc2C(=O)O1)c1ccc(O)cc1",
    "Cc1cc(NS(=O)(=O)c2ccc(N)cc2)no1", "CCCc1nc(C)c2n1[nH]c(nc2=O)-c1cc(ccc1OCC)S(=O)(=O)N1CCN(C)CC1",
    "COc1ccccc1OCC(O)CN1CCN(CC(=O)Nc2c(C)cccc2C)CC1",
]
DECORATIONS = ["", "C", "F", "Cl", "OC"]


def decorated(smiles: str) -> list[str]:
    """The drug and up to four analogues with a substituent on its first aromatic CH (distinct InChIKeys)."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    site = next((a.GetIdx() for a in mol.GetAtoms() if a.GetIsAromatic() and a.GetSymbol() == "C"
                 and a.GetTotalNumHs() == 1), None)
    out = [Chem.MolToSmiles(mol)]
    for group in DECORATIONS[1:] if site is not None else []:
        rw = Chem.RWMol(mol)
        sub = Chem.MolFromSmiles(group)
        offset = rw.GetNumAtoms()
        for atom in sub.GetAtoms():
            rw.AddAtom(Chem.Atom(atom.GetAtomicNum()))
        for bond in sub.GetBonds():
            rw.AddBond(bond.GetBeginAtomIdx() + offset, bond.GetEndAtomIdx() + offset, bond.GetBondType())
        rw.AddBond(site, offset, Chem.BondType.SINGLE)
        rw.GetAtomWithIdx(site).SetNumExplicitHs(0)
        Chem.SanitizeMol(rw)
        out.append(Chem.MolToSmiles(rw))
    return out


def run(smiles: list[str], embed_3d: bool, workers: int, root: Path) -> dict:
    from pipelines.molecules.ingest import ingest_molecules

    src = root / "mols.csv"
    src.write_text("smiles\n" + "\n".join(smiles) + "\n")
    out = root / f"out_{int(embed_3d)}_{workers}"
    t0 = time.perf_counter()
    manifest, counts = ingest_molecules([src], out, embed_3d=embed_3d, workers=workers, progress=False,
                                        molecules_per_shard=100)
    seconds = time.perf_counter() - t0
    return {"embed_3d": embed_3d, "workers": workers, "records": manifest.input_rows, "kept": counts["kept"],
            "dropped": counts["dropped"], "seconds": round(seconds, 3),
            "molecules_per_s": round(counts["kept"] / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    smiles = [s for drug in DRUGS for s in decorated(drug)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for embed_3d in (False, True):
            for workers in sorted({1, args.workers}):
                r = run(smiles, embed_3d, workers, Path(tmp))
                results.append(r)
                print(f"{'with' if embed_3d else 'without'} 3D, {workers} worker(s): {r['kept']}/{r['records']} "
                      f"molecules in {r['seconds']} s = {r['molecules_per_s']} molecules/s "
                      f"(pool start and prepare pass included)")
    print(json.dumps({"molecules": len(smiles), "runs": results}))


if __name__ == "__main__":
    main()
