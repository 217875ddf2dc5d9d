"""`tessera ingest --source molecules` (and its alias `tessera mol ingest`): the molecule track's options and command."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DESCRIPTION = """\
Read molecules from SMILES tables (CSV, CSV.gz, parquet; PCQM4Mv2's data.csv.gz with `smiles` and `homolumogap`) and
SDF files (their 3D coordinates kept), as one partition of OUT. RDKit sanitizes and canonicalizes each record; the
first record of each InChIKey is kept. Records without coordinates get an ETKDG conformer (seeded) optimized with
MMFF94, else UFF; random-coordinate embedding if ETKDG fails (conformer_method records which).

Writes OUT/molecules/NNNNN.parquet (per kept molecule: OGB atom features x, edge_index, edge_attr, attn_edge_type,
spatial_pos, sp_path, in_degree, pos, distance; see docs/moleblend.md), OUT/molecules/NNNNN.ledger.parquet (every
input record: kept, or dropped with reason unparsable, sanitization_error, too_many_atoms, duplicate_inchikey,
embedding_failed, featurization_error) and a marker last. A rerun resumes and skips finished shards."""


def add_ingest_options(p: argparse.ArgumentParser) -> None:
    """The molecule group: SMILES column, atom limit, shard size, conformer seed, 3D on/off, worker processes."""
    mol = p.add_argument_group(
        "molecules (--source molecules; docs/moleblend.md)",
        "RDKit-sanitized, InChIKey-deduplicated molecules with ETKDG/MMFF conformers and OGB features into "
        "OUT/molecules/NNNNN.parquet, every input record in OUT/molecules/NNNNN.ledger.parquet.",
    )
    mol.add_argument("--smiles-column", default="smiles", help="SMILES column of CSV/parquet inputs")
    mol.add_argument("--max-atoms", type=int, default=128, help="drop molecules with more heavy atoms")
    mol.add_argument("--molecules-per-shard", type=int, default=1000, help="kept molecules per output shard")
    mol.add_argument("--seed", type=int, default=0, help="ETKDG random seed")
    mol.add_argument("--no-3d", action="store_true", help="no conformer generation: pos and distance stay zero "
                     "for records without coordinates (SDF coordinates are still kept)")
    mol.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")


def ingest_cli(args: argparse.Namespace) -> int:
    """Ingest the files as one molecule partition and print a summary line."""
    from pipelines.molecules.ingest import ingest_molecules, summary_line

    manifest, counts = ingest_molecules(
        args.metadata, args.out, partition=args.partition, smiles_column=args.smiles_column, max_atoms=args.max_atoms,
        molecules_per_shard=args.molecules_per_shard, seed=args.seed, embed_3d=not args.no_3d,
        workers=args.workers, wait=args.wait, progress=not args.quiet)
    print(summary_line(manifest, counts))
    return 0


def register_commands(sub: argparse._SubParsersAction) -> None:
    """`tessera mol ingest`: the same command as `tessera ingest --source molecules`, with `--input` for the files."""
    mol = sub.add_parser("mol", help="molecule curation for MoleBLEND (SMILES/SDF -> 2D/3D feature shards); "
                                     "`mol ingest` is `ingest --source molecules`")
    mol_sub = mol.add_subparsers(dest="mol_command", metavar="MOL_COMMAND")
    mol_sub.required = True
    p = mol_sub.add_parser("ingest", help="SMILES/SDF files -> feature shards and a ledger (= ingest --source "
                                          "molecules)", description=DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", dest="metadata", type=Path, nargs="+", required=True, metavar="FILE",
                   help=".csv, .csv.gz, .parquet (SMILES column) or .sdf files, read in the order given")
    p.add_argument("--out", type=Path, required=True, help="output folder (several partitions may share it)")
    p.add_argument("--partition", help="partition name (default: from the first file name)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wait", action="store_true",
                   help="if another run is writing the same partition, wait for it (default: stop with a message)")
    add_ingest_options(p)
    p.set_defaults(func=ingest_cli, source="molecules")
