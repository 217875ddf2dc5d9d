"""Interleaved image-text documents (MMC4, OBELICS): ingest, curation, document shards and Emu sequences."""
