"""Engine test: the captioner and fuser stages give the same rows on Ray Data actor pools as in the local loop."""

from __future__ import annotations

import pyarrow as pa
import pytest
from caption_fixture import jpeg, tiny_cache, tiny_captioner, tiny_llm  # noqa: F401

from pipelines.caption.caption_fuser import CaptionFuser
from pipelines.core.runner import StageRunner
from pipelines.caption.synthetic_captioner import SyntheticCaptioner


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    yield
    ray.shutdown()


def test_ray_engine_equals_local(ray_session, tiny_captioner, tiny_llm):  # noqa: F811
    table = pa.table({
        "key": [f"k{i}" for i in range(5)],
        "raw_caption": ["red car 2024", "old london station", "", "cheap shoes", "lake"],
        "image": [jpeg(i) for i in range(4)] + [b"broken"],
    })
    stages = [
        SyntheticCaptioner(model=tiny_captioner, num_beams=1, max_new_tokens=5, device="cpu"),
        CaptionFuser(model=tiny_llm, num_beams=1, max_new_tokens=5, device="cpu"),
    ]
    local = StageRunner(engine="local", batch_size=2).run(stages, table)
    remote = StageRunner(engine="ray", batch_size=2, num_actors=1).run(stages, table)
    assert remote.num_rows == local.num_rows == 5
    assert remote.column_names == local.column_names
    assert remote.to_pylist() == local.to_pylist()
    assert local.column("fuser_status").to_pylist()[-1] == "no_synthetic"
