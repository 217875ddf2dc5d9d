"""CLIP scorer (models/): tiny checkpoint round trip, cosine scores, preprocessing, real architectures build."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from curate_testdata import jpeg


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("tessera_cache")
    mp.setenv("TESSERA_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def scorer(cache):
    from models.clip_scorer import ClipScorer

    return ClipScorer("tiny", device="cpu")


def test_tiny_is_a_checkpoint_folder_in_the_cache(scorer, cache):
    folder = cache / "clip" / "tiny"
    assert (folder / "open_clip_config.json").is_file()
    assert (folder / "open_clip_pytorch_model.bin").is_file()
    assert scorer.model_id == "tiny"
    assert scorer.spec.model_name == f"local-dir:{folder}"
    assert scorer.preprocess_cfg["size"] == (64, 64)


def test_local_checkpoint_folder_loads_the_same_weights(scorer, cache):
    from models.clip_scorer import ClipScorer

    other = ClipScorer(str(cache / "clip" / "tiny"), device="cpu")
    assert other.model_id.startswith("local-dir:")
    images, texts = [jpeg(1), jpeg(2)], ["a red house", "a dog"]
    np.testing.assert_array_equal(scorer.score(images, texts).scores, other.score(images, texts).scores)


def test_score_is_cosine_of_normalised_embeddings(scorer):
    images = [jpeg(i) for i in range(4)]
    texts = ["a red house", "a dog on a beach", "", "a photo"]
    result = scorer.score(images, texts, with_embeddings=True)
    pixels, _ = scorer.pil_batch(images)
    with torch.no_grad():
        img = scorer.model.encode_image(pixels)
        txt = scorer.model.encode_text(scorer.tokenizer(texts))
    expected = torch.nn.functional.cosine_similarity(img, txt).numpy()
    np.testing.assert_allclose(result.scores, expected, atol=1e-5)
    assert result.scores.dtype == np.float32 and np.all(np.abs(result.scores) <= 1)
    assert result.embeddings.dtype == np.float16 and result.embeddings.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings.astype(np.float32), axis=1), 1.0, atol=2e-3)


def test_undecodable_image_gets_nan_and_error(scorer):
    result = scorer.score([jpeg(1), b"not an image"], ["a", "b"])
    assert not np.isnan(result.scores[0]) and np.isnan(result.scores[1])
    assert result.errors[0] is None and result.errors[1].startswith("decode_error")


def test_tensor_decode_path_matches_open_clip_preprocessing(scorer):
    from models.gpu_decode import gpu_preprocess

    images = [jpeg(3, size=(120, 80)), jpeg(4, size=(50, 90)), b"\xff\xd8\xffbroken", b"junk"]
    ref, ref_err = scorer.pil_batch(images)
    # The nvjpeg path on the CPU decoder: same geometry, mean/std and fallback rules as the PIL transform.
    got, err = gpu_preprocess(images, scorer.preprocess_cfg, "cpu", scorer.pil_batch)
    assert err == ref_err and err[2] is not None and err[3] is not None
    assert torch.allclose(got[:2], ref[:2], atol=0.1) and (got[:2] - ref[:2]).abs().mean() < 0.01


def test_spec_resolution_without_downloads(cache):
    from models.clip_registry import resolve

    assert resolve("ViT-B-32:random").pretrained is None
    assert resolve("ViT-B-32:laion2b_s34b_b79k").model_id == "ViT-B-32:laion2b_s34b_b79k"
    assert resolve("ViT-B-32").pretrained == resolve("ViT-B-32").model_id.split(":")[1]
    assert resolve("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K").pretrained is None
    with pytest.raises(ValueError, match="unknown CLIP model"):
        resolve("ViT-Q-99")
    with pytest.raises(ValueError, match="no pretrained tag"):
        resolve("ViT-B-32:no_such_tag")


@pytest.mark.parametrize("name", ["ViT-B-32", "EVA02-B-16"])
def test_base_architectures_build_with_random_weights(name):
    import open_clip

    start = time.perf_counter()
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    seconds = time.perf_counter() - start
    assert model.visual.preprocess_cfg["size"] == (224, 224)
    with torch.no_grad():
        emb = model.encode_image(torch.zeros(1, 3, 224, 224))
    assert emb.shape == (1, 512)
    print(f"{name} built in {seconds:.1f} s")


@pytest.mark.parametrize("name", ["ViT-L-14", "EVA02-L-14"])
def test_large_architectures_build_on_meta_device(name):
    import open_clip

    with torch.device("meta"):
        model = open_clip.create_model(name, pretrained=None, device="meta")
    assert sum(p.numel() for p in model.parameters()) > 4e8
    assert model.visual.preprocess_cfg["size"] == (224, 224)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_decode_scores_match_cpu(cache):
    from models.clip_scorer import ClipScorer

    images, texts = [jpeg(i, size=(200, 150)) for i in range(8)], ["a red house"] * 8
    cpu = ClipScorer("tiny", device="cpu").score(images, texts).scores
    gpu = ClipScorer("tiny", device="cuda").score(images, texts, gpu_decode=True).scores
    np.testing.assert_allclose(cpu, gpu, atol=0.02)
