"""MoleBLEND molecule curation: SMILES/SDF in, OGB/Graphormer features and 3D distances out, every record ledgered."""
