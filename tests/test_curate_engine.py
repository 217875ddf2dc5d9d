"""Engine tier: the CLIP scoring stages under Ray Data give the same rows as the local loop."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate_testdata import jpeg
from pipelines.curate.stages.clip_score_annotator import ClipScoreAnnotator
from pipelines.curate.stages.image_hash_annotator import ImageHashAnnotator
from pipelines.core.runner import StageRunner


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_CACHE", str(tmp_path_factory.mktemp("tessera_cache")))
    mp.setenv("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
    images = [jpeg(i) for i in range(23)] + [b"broken"]
    yield pa.table({"key": [f"{i:05d}" for i in range(24)], "caption": [f"a red house {i}" for i in range(24)],
                    "jpg": pa.array(images, pa.binary())})
    mp.undo()


def test_ray_data_matches_local_loop(batch):
    import ray

    stages = [ClipScoreAnnotator(model="tiny", with_embeddings=True), ImageHashAnnotator()]
    local = StageRunner(engine="local", batch_size=8).run(stages, batch)
    try:
        remote = StageRunner(engine="ray", batch_size=8, num_actors=2).run(stages, batch)
    finally:
        ray.shutdown()
    assert remote["key"].to_pylist() == local["key"].to_pylist() == batch["key"].to_pylist()
    assert remote["model"].to_pylist() == ["tiny"] * 24
    assert remote["phash"].to_pylist() == local["phash"].to_pylist()
    assert remote["clip_error"].to_pylist() == local["clip_error"].to_pylist()
    assert local["clip_score"][23].as_py() is None and local["phash"][23].as_py() is None
    np.testing.assert_allclose(remote["clip_score"].to_numpy(zero_copy_only=False),
                               local["clip_score"].to_numpy(zero_copy_only=False), atol=1e-6)
    emb = local["clip_embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    assert emb.dtype == np.float16 and emb.size == 24 * 32
