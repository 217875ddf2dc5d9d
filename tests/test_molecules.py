"""MoleBLEND molecules: OGB/Graphormer features against independent computations, the ledger (every record once,
with its reason), resume, `tessera stats`, and the Dagster sensor, assets and accounting check."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import sensed_partitions
from dagster import instance_for_test, materialize
from rdkit import Chem
from rdkit.Chem import AllChem

from pipelines.cli.main import main
from pipelines.molecules import schema as M
from pipelines.molecules.features import (
    OFFSET, UNREACHABLE, atom_to_feature_vector, bond_to_feature_vector, edge_input, mol_to_graph, preprocess_item,
)

# (SMILES, outcome) in input order; run with --max-atoms 20.
SMILES = [
    ("CCO", M.KEPT),
    ("c1ccccc1C(=O)O", M.KEPT),
    ("C1CC", M.UNPARSABLE),  # unclosed ring
    ("OCC", M.DUPLICATE_INCHIKEY),  # ethanol written differently
    ("C(C)(C)(C)(C)C", M.SANITIZATION_ERROR),  # pentavalent carbon
    ("CC(C)Cc1ccc(cc1)C(C)C(=O)O", M.KEPT),  # ibuprofen
    ("", M.UNPARSABLE),
    ("c1cccc1", M.SANITIZATION_ERROR),  # cannot be kekulized
    ("C" * 25, M.TOO_MANY_ATOMS),
    ("[Na+].[Cl-]", M.KEPT),  # two fragments: unreachable pairs
    ("OC(=O)c1ccccc1", M.DUPLICATE_INCHIKEY),  # benzoic acid again
    ("CN1C=NC2=C1C(=O)N(C(=O)N2C)C", M.KEPT),  # caffeine
    ("not a smiles", M.UNPARSABLE),
]
SDF_SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "NCC(=O)O"]  # aspirin, glycine: 3D coordinates in the file


def write_inputs(folder):
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "pcqm.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["idx", "smiles", "homolumogap"])
        for i, (s, _) in enumerate(SMILES):
            w.writerow([i, s, 3.0 + i])
    sdf = folder / "mols.sdf"
    writer = Chem.SDWriter(str(sdf))
    coords = []
    for s in SDF_SMILES:
        mol = Chem.AddHs(Chem.MolFromSmiles(s))
        AllChem.EmbedMolecule(mol, randomSeed=7)
        mol = Chem.RemoveHs(mol)
        coords.append(mol.GetConformer().GetPositions())
        writer.write(mol)
    writer.close()
    return table, sdf, coords


def floyd_warshall_loop(adj: np.ndarray):
    """MoleBLEND's algos.pyx floyd_warshall, line by line (in-place, k-i-j order), for its tie-breaking."""
    n = len(adj)
    m = [[0 if i == j else (1 if adj[i][j] else UNREACHABLE) for j in range(n)] for i in range(n)]
    path = [[0] * n for _ in range(n)]
    for k in range(n):
        for i in range(n):
            for j in range(n):
                if m[i][j] > m[i][k] + m[k][j]:
                    m[i][j], path[i][j] = m[i][k] + m[k][j], k
    for i in range(n):
        for j in range(n):
            if m[i][j] >= UNREACHABLE:
                m[i][j] = path[i][j] = UNREACHABLE
    return np.array(m), np.array(path)


def test_relation_matrices_match_moleblend_loops():
    for smiles in ("CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "C1CC2CCC1C2.CCO", "c1ccc2ccccc2c1"):
        graph = mol_to_graph(Chem.MolFromSmiles(smiles))
        item = preprocess_item(graph)
        n = graph["node_feat"].shape[0]
        adj = np.zeros((n, n), dtype=bool)
        adj[graph["edge_index"][0], graph["edge_index"][1]] = True
        dist, path = floyd_warshall_loop(adj)
        path[adj] = -1
        assert np.array_equal(item["spatial_pos"], dist) and np.array_equal(item["sp_path"], path)


def test_ogb_features_match_the_ogb_examples_and_rdkit():
    # The examples in ogb/utils/features.py: atom 1 and bond 2 of Cl[C@H](/C=C/C)Br.
    mol = Chem.MolFromSmiles("Cl[C@H](/C=C/C)Br")
    assert atom_to_feature_vector(mol.GetAtomWithIdx(1)) == [5, 2, 4, 5, 1, 0, 2, 0, 0]
    assert bond_to_feature_vector(mol.GetBondWithIdx(2)) == [1, 2, 0]

    mol = Chem.MolFromSmiles("CC(C)Cc1ccc(cc1)C(C)C(=O)O.O")  # ibuprofen and a water: one unreachable atom
    item = preprocess_item(mol_to_graph(mol))
    n = mol.GetNumAtoms()
    spd = Chem.GetDistanceMatrix(mol)  # RDKit's topological distances; 1e8 between fragments
    assert np.array_equal(item["spatial_pos"], np.where(spd > 1e6, UNREACHABLE, spd).astype(int))
    assert item["in_degree"].tolist() == [a.GetDegree() for a in mol.GetAtoms()]
    assert item["x"].shape == (n, 9) and item["edge_index"].shape == (2, 2 * mol.GetNumBonds())
    raw = item["x"] - 1 - OFFSET * np.arange(9)
    assert raw[:, 0].tolist() == [a.GetAtomicNum() - 1 for a in mol.GetAtoms()]
    assert raw[:, 7].tolist() == [int(a.GetIsAromatic()) for a in mol.GetAtoms()]
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        want = np.array(bond_to_feature_vector(bond)) + 1 + OFFSET * np.arange(3) + 1
        assert item["attn_edge_type"][i, j].tolist() == item["attn_edge_type"][j, i].tolist() == want.tolist()
    assert (item["attn_edge_type"][spd != 1] == 0).all()
    paths = edge_input(item["spatial_pos"], item["sp_path"], item["attn_edge_type"])
    steps = (paths[..., 0] != -1).sum(axis=-1)
    reachable = item["spatial_pos"] < UNREACHABLE
    assert np.array_equal(steps[reachable], item["spatial_pos"][reachable])
    assert (steps[~reachable] == 0).all()


def test_ingest_ledger_features_resume_and_stats(tmp_path, capsys):
    table, sdf, coords = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    args = ["mol", "ingest", "--input", str(table), str(sdf), "--out", str(out), "--max-atoms", "20",
            "--molecules-per-shard", "3", "--workers", "1", "--quiet"]
    assert main(args) == 0
    assert "15 records, 7 kept, 8 dropped" in capsys.readouterr().out

    ledgers = sorted((out / M.MOLECULES_DIR).glob("*.ledger.parquet"))
    ledger = pq.read_table(ledgers).to_pylist()
    assert len(ledgers) == 3 and len(ledger) == len(SMILES) + 2
    by_row = {(r["input_file"].endswith(".sdf"), r["input_row"]): r for r in ledger}
    assert len(by_row) == len(ledger)
    for i, (_, outcome) in enumerate(SMILES):
        row = by_row[(False, i)]
        assert (row["reason"] or row["status"]) == outcome, (i, row)
    ethanol = by_row[(False, 0)]["key"]
    assert by_row[(False, 3)]["key"] == ethanol and ethanol in by_row[(False, 3)]["detail"]
    assert "pcqm.csv#0" in by_row[(False, 3)]["detail"]

    shards = sorted(p for p in (out / M.MOLECULES_DIR).glob("*.parquet") if ".ledger" not in p.name)
    rows = pq.read_table(shards).to_pylist()
    assert [pq.read_metadata(p).num_rows for p in shards] == [3, 3, 1]
    assert len({r["key"] for r in rows}) == len(rows) == 7
    for row in rows:
        t = M.tensors(row)
        assert t["x"].shape == (row["num_atoms"], 9) and t["distance"].shape == (row["num_atoms"],) * 2
        pos = t["pos"].astype(np.float64)
        assert np.allclose(t["distance"], np.linalg.norm(pos[:, None] - pos[None], axis=-1), atol=1e-4)
        mol = Chem.MolFromSmiles(row["smiles"]) if row["smiles"] else None
        if mol is not None:
            assert np.array_equal(t["spatial_pos"], np.where(Chem.GetDistanceMatrix(mol) > 1e6, UNREACHABLE,
                                                               Chem.GetDistanceMatrix(mol)).astype(int))
    sdf_rows = [r for r in rows if r["input_file"].endswith(".sdf")]
    assert [r["conformer_method"] for r in sdf_rows] == ["sdf", "sdf"]
    for row, xyz in zip(sdf_rows, coords):
        assert np.allclose(M.tensors(row)["pos"], xyz, atol=1e-4)
    smiles_rows = [r for r in rows if not r["input_file"].endswith(".sdf")]
    assert {r["conformer_method"] for r in smiles_rows} == {"etkdg_mmff"}
    assert [r["y"] for r in smiles_rows][:2] == [3.0, 4.0]
    salt = next(r for r in rows if r["smiles"] == "[Na+].[Cl-]")
    assert M.tensors(salt)["spatial_pos"].tolist() == [[0, UNREACHABLE], [UNREACHABLE, 0]]

    # A rerun writes nothing; a lost marker redoes only its shard, with the same content.
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / M.MOLECULES_DIR).iterdir()}
    assert main(args) == 0
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / M.MOLECULES_DIR).iterdir()} == files
    (out / M.MOLECULES_DIR / "00001_stats.json").unlink()
    assert main(args) == 0
    again = {p: p.stat().st_mtime_ns for p in (out / M.MOLECULES_DIR).iterdir()}
    assert again[out / M.MOLECULES_DIR / "00000.parquet"] == files[out / M.MOLECULES_DIR / "00000.parquet"][0]
    assert again[out / M.MOLECULES_DIR / "00001.parquet"] != files[out / M.MOLECULES_DIR / "00001.parquet"][0]
    assert pq.read_table(out / M.MOLECULES_DIR / "00001.parquet").to_pylist() == rows[3:6]
    assert main([*args[:-5], "--molecules-per-shard", "5", "--quiet"]) == 2  # other options: a clear error
    capsys.readouterr()

    assert main(["stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["accounting"]["holds"] and stats["tracks"] == ["molecules"]
    mol = stats["molecules"]
    assert mol["molecule_accounting"] == {
        "records_expected": 15, "records_accounted": 15, "records_missing": 0, "records_duplicated": 0,
        "records_duplicate_keys": 0, "shard_rows_expected": 7, "shard_rows_accounted": 7, "shard_rows_missing": 0,
        "shard_rows_duplicated": 0, "shard_rows_duplicate_keys": 0}
    assert (stats["input_rows"], stats["success"], stats["failed"], stats["rejected"]) == (15, 7, 0, 8)
    outcomes = {(o["status"], o["reason"]): o["n"] for o in mol["molecule_outcomes"]}
    assert outcomes == {("kept", ""): 7, ("dropped", "unparsable"): 3, ("dropped", "sanitization_error"): 2,
                        ("dropped", "duplicate_inchikey"): 2, ("dropped", "too_many_atoms"): 1}
    assert {c["conformer_method"]: c["n"] for c in mol["molecule_conformers"]} == {"etkdg_mmff": 5, "sdf": 2}
    assert mol["molecule_atoms"]["max_atoms"] == 15 and mol["molecule_atoms"]["min_atoms"] == 2


def test_no_3d_keeps_zero_positions_and_a_second_partition_dedups(tmp_path):
    from pipelines.molecules.ingest import ingest_molecules

    table, sdf, _ = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    first, counts = ingest_molecules([sdf], out, embed_3d=False, progress=False)
    assert counts["kept"] == 2
    second, counts = ingest_molecules([table], out, embed_3d=False, max_atoms=20, progress=False)
    assert second.start_shard_id == first.n_shards and counts["kept"] == 5
    rows = pq.read_table(out / M.MOLECULES_DIR / f"{second.start_shard_id:05d}.parquet").to_pylist()
    assert {r["conformer_method"] for r in rows} == {"none"}
    assert all(not any(r["pos"]) and not any(r["distance"]) for r in rows)


@pytest.mark.parametrize("bad", ["missing", "column"])
def test_bad_inputs_stop_with_one_line(tmp_path, capsys, bad):
    path = tmp_path / "x.csv"
    if bad == "column":
        path.write_text("smi\nCCO\n")
    assert main(["mol", "ingest", "--input", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ("no such input file" in err if bad == "missing" else "'smiles'" in err)


def test_dagster_sensor_assets_and_accounting_check(tmp_path):
    from assets.molecule_assets import ASSETS, CHECKS, molecule_files, molecule_files_sensor
    from assets.resources import TesseraResource

    table, sdf, _ = write_inputs(tmp_path / "incoming" / "molecules")
    tessera = TesseraResource(input_dir=str(tmp_path / "incoming"), out_dir=str(tmp_path / "tessera"), processes=1)
    resources = {"tessera": tessera}
    config = {"ops": {"molecule_shards": {"config": {"max_atoms": 20}}}}
    with instance_for_test() as instance:
        keys = sensed_partitions(molecule_files_sensor, molecule_files, instance, resources)
        assert keys == ["molecules__mols.sdf", "molecules__pcqm.csv"]
        for key in keys:
            assert materialize(ASSETS[:1], instance=instance, resources=resources, partition_key=key,
                               run_config=config).success
        run = materialize([*ASSETS[1:], *CHECKS], instance=instance, resources=resources)
        assert run.success
        assert {e.check_name: e.passed for e in run.get_asset_check_evaluations()} == {
            "check_molecule_stats_accounting": True}
        meta = run.asset_materializations_for_node("molecule_stats")[0].metadata
        assert meta["records_expected"].value == 15 and meta["shard_rows_accounted"].value == 7
