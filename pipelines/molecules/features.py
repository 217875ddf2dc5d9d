"""The 2D/3D features MoleBLEND trains on, computed exactly as its data code does.

Atom and bond features re-implement OGB's `ogb.utils.features` (snap-stanford/ogb, `allowable_features`,
`atom_to_feature_vector`, `bond_to_feature_vector`); the graph follows `mol2graph`/`smiles2graph`
(YudiZh/MoleBlend MoleBlend/data/wrapper.py: both bond directions, in RDKit bond order), and the relation matrices
follow `preprocess_item` there and `floyd_warshall`/`gen_edge_input` in its `algos.pyx`.
"""

from __future__ import annotations

import numpy as np

OFFSET = 512  # convert_to_single_emb: feature f with value v becomes id 1 + 512*f + v
UNREACHABLE = 510  # algos.floyd_warshall: distance and path value of a pair with no path

ALLOWABLE = {
    "atomic_num": list(range(1, 119)) + ["misc"],
    "chirality": ["CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER", "misc"],
    "degree": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "misc"],
    "formal_charge": [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, "misc"],
    "num_hs": [0, 1, 2, 3, 4, 5, 6, 7, 8, "misc"],
    "num_radical_electrons": [0, 1, 2, 3, 4, "misc"],
    "hybridization": ["SP", "SP2", "SP3", "SP3D", "SP3D2", "misc"],
    "is_aromatic": [False, True],
    "is_in_ring": [False, True],
    "bond_type": ["SINGLE", "DOUBLE", "TRIPLE", "AROMATIC", "misc"],
    "bond_stereo": ["STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY"],
    "is_conjugated": [False, True],
}
ATOM_FEATURES = ["atomic_num", "chirality", "degree", "formal_charge", "num_hs", "num_radical_electrons",
                 "hybridization", "is_aromatic", "is_in_ring"]
BOND_FEATURES = ["bond_type", "bond_stereo", "is_conjugated"]


class FeaturizationError(ValueError):
    """A value OGB's feature lists cannot index (OGB itself raises on it: bond stereo has no `misc` entry)."""


def _safe_index(values: list, value) -> int:
    """OGB's safe_index: the value's position, or the last (`misc`) one."""
    try:
        return values.index(value)
    except ValueError:
        return len(values) - 1


def _index(values: list, value, what: str) -> int:
    try:
        return values.index(value)
    except ValueError:
        raise FeaturizationError(f"{what} {value} is not in OGB's list") from None


def atom_to_feature_vector(atom) -> list[int]:
    """OGB's 9 atom features: indices into `ALLOWABLE` in `ATOM_FEATURES` order."""
    a = ALLOWABLE
    return [
        _safe_index(a["atomic_num"], atom.GetAtomicNum()),
        _safe_index(a["chirality"], str(atom.GetChiralTag())),
        _safe_index(a["degree"], atom.GetTotalDegree()),
        _safe_index(a["formal_charge"], atom.GetFormalCharge()),
        _safe_index(a["num_hs"], atom.GetTotalNumHs()),
        _safe_index(a["num_radical_electrons"], atom.GetNumRadicalElectrons()),
        _safe_index(a["hybridization"], str(atom.GetHybridization())),
        a["is_aromatic"].index(atom.GetIsAromatic()),
        a["is_in_ring"].index(atom.IsInRing()),
    ]


def bond_to_feature_vector(bond) -> list[int]:
    """OGB's 3 bond features: type (with misc), stereo and conjugation (without misc: unknown ones raise)."""
    a = ALLOWABLE
    return [
        _safe_index(a["bond_type"], str(bond.GetBondType())),
        _index(a["bond_stereo"], str(bond.GetStereo()), "bond stereo"),
        a["is_conjugated"].index(bond.GetIsConjugated()),
    ]


def mol_to_graph(mol) -> dict[str, np.ndarray]:
    """OGB's smiles2graph on a sanitized RDKit mol: node_feat [N,9], edge_index [2,E], edge_feat [E,3] (int64)."""
    x = np.array([atom_to_feature_vector(a) for a in mol.GetAtoms()], dtype=np.int64).reshape(-1, 9)
    edges, feats = [], []
    for bond in mol.GetBonds():
        i, j, f = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), bond_to_feature_vector(bond)
        edges += [(i, j), (j, i)]
        feats += [f, f]
    edge_index = np.array(edges, dtype=np.int64).reshape(-1, 2).T
    return {"node_feat": x, "edge_index": edge_index, "edge_feat": np.array(feats, dtype=np.int64).reshape(-1, 3)}


def convert_to_single_emb(x: np.ndarray, offset: int = OFFSET) -> np.ndarray:
    """MoleBLEND's convert_to_single_emb: column f of x shifted by 1 + offset*f."""
    return x + 1 + np.arange(0, x.shape[-1] * offset, offset, dtype=np.int64)


def floyd_warshall(adj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """algos.floyd_warshall: (shortest hop counts, intermediate node per pair), unreachable pairs both 510."""
    n = adj.shape[0]
    dist = np.where(adj, 1, UNREACHABLE).astype(np.int64)
    np.fill_diagonal(dist, 0)
    path = np.zeros((n, n), dtype=np.int64)
    for k in range(n):  # row and column k do not change in step k, so one vectorised step equals the C loop
        cost = dist[:, k, None] + dist[None, k, :]
        better = dist > cost
        dist = np.where(better, cost, dist)
        path[better] = k
    far = dist >= UNREACHABLE
    dist[far], path[far] = UNREACHABLE, UNREACHABLE
    return dist, path


def preprocess_item(graph: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """MoleBLEND's preprocess_item without the tensors it rebuilds per batch: x (single-emb ids), attn_edge_type
    [N,N,3] (single-emb ids + 1, 0 = no bond), spatial_pos [N,N], sp_path [N,N] (the path matrix gen_edge_input
    walks; -1 for bonded pairs) and in_degree [N] (= out_degree)."""
    x, edge_index, edge_attr = graph["node_feat"], graph["edge_index"], graph["edge_feat"]
    n = x.shape[0]
    adj = np.zeros((n, n), dtype=bool)
    adj[edge_index[0], edge_index[1]] = True
    attn_edge_type = np.zeros((n, n, edge_attr.shape[-1]), dtype=np.int64)
    attn_edge_type[edge_index[0], edge_index[1]] = convert_to_single_emb(edge_attr) + 1
    spatial_pos, path = floyd_warshall(adj)
    path[adj] = -1
    return {"x": convert_to_single_emb(x), "edge_index": edge_index, "edge_attr": edge_attr,
            "attn_edge_type": attn_edge_type, "spatial_pos": spatial_pos, "sp_path": path,
            "in_degree": adj.sum(axis=1).astype(np.int64)}


def _walk(path: np.ndarray, i: int, j: int) -> list[int]:
    k = int(path[i, j])
    return [] if k == -1 else _walk(path, i, k) + [k] + _walk(path, k, j)


def edge_input(spatial_pos: np.ndarray, sp_path: np.ndarray, attn_edge_type: np.ndarray) -> np.ndarray:
    """algos.gen_edge_input: [N,N,max_dist,3] edge ids along each shortest path, -1 beyond it (rebuilt on read
    rather than stored: it is the one tensor that grows with N^2 times the diameter)."""
    n = spatial_pos.shape[0]
    max_dist = int(spatial_pos.max()) if n else 0
    out = -np.ones((n, n, max_dist, attn_edge_type.shape[-1]), dtype=np.int64)
    for i in range(n):
        for j in range(n):
            if i == j or sp_path[i, j] == UNREACHABLE:
                continue
            nodes = [i] + _walk(sp_path, i, j) + [j]
            for k in range(len(nodes) - 1):
                out[i, j, k] = attn_edge_type[nodes[k], nodes[k + 1]]
    return out


def distance_matrix(pos: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances [N,N] (float32) of the atom positions [N,3]."""
    pos = np.asarray(pos, dtype=np.float64)
    return np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1).astype(np.float32)
