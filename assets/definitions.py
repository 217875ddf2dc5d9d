"""`defs`: every track's Dagster `Definitions` (its assets, checks, ingest job and file sensor), merged by iterating
the track registry (each track's "dagster" role), plus the one automation sensor and the resources.

`dagster dev -m assets.definitions` (or `make ui`) shows the asset graph. Settings come from environment variables
so the same assets run on a laptop and on a cluster: TESSERA_INPUT_DIR, TESSERA_OUT_DIR, TESSERA_ENGINE (see
`assets.resources.tessera_resource`; unset, each keeps its default).
"""

from dagster import Definitions

from assets.automation import automation_sensor, conditioned
from assets.resources import tessera_resource
from pipelines.tracks import tracks


def build_defs() -> Definitions:
    """Every track's `defs` merged, with the automation sensor over the assets that carry the pipeline condition and
    the `tessera` resource. (A function: Dagster loads a module with exactly one `Definitions` at module scope.)"""
    track_defs = Definitions.merge(*(t.get("dagster") for t in tracks() if t.has("dagster")))
    return Definitions.merge(track_defs, Definitions(
        sensors=[automation_sensor(conditioned(track_defs.assets or []))],
        resources={"tessera": tessera_resource()},
    ))


defs = build_defs()
