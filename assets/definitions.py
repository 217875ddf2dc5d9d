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

TRACK_DEFS = Definitions.merge(*(t.get("dagster") for t in tracks() if t.has("dagster")))

defs = Definitions.merge(TRACK_DEFS, Definitions(
    sensors=[automation_sensor(conditioned(TRACK_DEFS.assets or []))],
    resources={"tessera": tessera_resource()},
))
