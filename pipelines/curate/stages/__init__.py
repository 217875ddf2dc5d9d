"""curate.stages."""
