"""Reading one record with RDKit the way MoleBLEND does (`Chem.MolFromSmiles`, `SDMolSupplier` defaults: sanitize,
remove hydrogens), and telling an unreadable record from one that sanitization rejects."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.molecules import schema as M


class BadRecord(ValueError):
    """A record that yields no molecule: a stable reason and a short detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Identity:
    """What the prepare pass needs of a molecule: canonical SMILES, dedup key, heavy-atom count."""

    canonical_smiles: str
    inchikey: str
    num_atoms: int


def parse(kind: str, text: str | None):
    """The sanitized RDKit mol of a SMILES string or SDF mol block; BadRecord when there is none."""
    from rdkit import Chem, rdBase

    if text is None or not text.strip():
        raise BadRecord(M.UNPARSABLE, "empty record")
    read = Chem.MolFromSmiles if kind == M.SMILES else Chem.MolFromMolBlock
    with rdBase.BlockLogs():
        raw = read(text, sanitize=False)
        if raw is None or raw.GetNumAtoms() == 0:
            raise BadRecord(M.UNPARSABLE, f"RDKit cannot read {kind} {text.strip()[:80]!r}")
        mol = read(text)  # exactly MoleBLEND's call (sanitize=True, hydrogens removed)
        if mol is None:
            try:
                Chem.SanitizeMol(raw)
                detail = "sanitization failed"
            except Exception as err:  # noqa: BLE001 - RDKit raises several exception types; keep its message
                detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BadRecord(M.SANITIZATION_ERROR, detail[:200])
    return mol


def identity(mol) -> Identity:
    """Canonical SMILES, InChIKey (the canonical SMILES prefixed `smiles:` when RDKit's InChI gives none)."""
    from rdkit import Chem, rdBase

    smiles = Chem.MolToSmiles(mol)
    with rdBase.BlockLogs():
        key = Chem.MolToInchiKey(mol)
    return Identity(smiles, key or f"smiles:{smiles}", mol.GetNumAtoms())


def inspect(kind: str, text: str | None) -> tuple[Identity | None, str | None, str | None]:
    """(identity, reason, detail) of one record for the prepare pass; picklable for a process pool."""
    try:
        return identity(parse(kind, text)), None, None
    except BadRecord as bad:
        return None, bad.reason, bad.detail
