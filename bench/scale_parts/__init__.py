"""The parts of `bench/scale.py`: one module per pool-wide step, each exposing `run(quick: bool, work: Path) -> dict`.

A part prints its own human-readable lines and returns its figures (numbers, goals and whether each is met); the
driver collects them into the one JSON line. `common.child` runs one measured step in a fresh process so that its
peak RSS is that step's own.
"""
