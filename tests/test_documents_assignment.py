"""MMC4 image-to-sentence assignment: optimal one-to-one matching, leftover rule, agreement with MMC4's padding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pipelines.documents.assignment import assign_images, matched_sims

SHAPES_FEW_IMAGES = [(1, 1), (1, 4), (2, 2), (2, 5), (3, 3), (3, 6), (4, 4), (4, 6), (5, 5)]
SHAPES_MANY_IMAGES = [(2, 1), (3, 1), (3, 2), (4, 2), (5, 3), (6, 3), (6, 4)]


def _random_sims(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.2, 0.5, size=shape)


def _mmc4_reference(sim: np.ndarray, dummy: float = 1000.0) -> np.ndarray:
    """MMC4's get_image_assignments, SciPy standing in for lapjv on the same padded square."""
    n_images, n_sentences = sim.shape
    size = max(sim.shape)
    cost = np.full((size, size), dummy)
    cost[:n_images, :n_sentences] = -sim
    rows, cols = linear_sum_assignment(cost)
    real = (rows < n_images) & (cols < n_sentences)
    out = {int(i): int(j) for i, j in zip(rows[real], cols[real])}
    for i in range(n_images):
        out.setdefault(i, int(np.argmax(sim[i])))
    return np.array([out[i] for i in range(n_images)])


@pytest.mark.parametrize("shape", SHAPES_FEW_IMAGES)
@pytest.mark.parametrize("seed", range(3))
def test_few_images_is_optimal_and_one_per_sentence(shape, seed):
    sim = _random_sims(shape, seed)
    got = assign_images(sim)
    assert got.dtype == np.int64 and got.shape == (shape[0],)
    assert len(set(got.tolist())) == shape[0]  # no sentence holds two images
    best = max(sim[np.arange(shape[0]), list(p)].sum() for p in itertools.permutations(range(shape[1]), shape[0]))
    assert matched_sims(sim, got).sum() == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("shape", SHAPES_MANY_IMAGES)
@pytest.mark.parametrize("seed", range(3))
def test_many_images_matches_optimally_then_leftovers_take_argmax(shape, seed):
    sim = _random_sims(shape, seed)
    n_images, n_sentences = shape
    got = assign_images(sim)
    # best one-to-one set: picks[j] is the image of sentence j
    best = max(sim[list(p), np.arange(n_sentences)].sum() for p in itertools.permutations(range(n_images), n_sentences))
    consistent = []
    for picks in itertools.permutations(range(n_images), n_sentences):
        leftovers = sorted(set(range(n_images)) - set(picks))
        if (all(got[i] == j for j, i in enumerate(picks))
                and all(got[i] == np.argmax(sim[i]) for i in leftovers)):
            consistent.append(sim[list(picks), np.arange(n_sentences)].sum())
    assert consistent, "no one-to-one set plus argmax leftovers explains the assignment"
    assert max(consistent) == pytest.approx(best, abs=1e-12)
    assert set(got.tolist()) == set(range(n_sentences))  # every sentence got an image


@pytest.mark.parametrize("shape", SHAPES_FEW_IMAGES + SHAPES_MANY_IMAGES + [(7, 12), (12, 7), (30, 40), (40, 15)])
def test_agrees_with_mmc4_padded_square(shape):
    sim = _random_sims(shape, seed=sum(shape))
    got, ref = assign_images(sim), _mmc4_reference(sim)
    assert matched_sims(sim, got).sum() == pytest.approx(matched_sims(sim, ref).sum(), abs=1e-12)
    np.testing.assert_array_equal(got, ref)  # continuous random values: the optimum is unique


def test_hand_made_examples():
    # Greedy (image 0 takes its best, sentence 0) totals 1.0; the optimum swaps them for 0.8 + 0.85.
    swap = np.array([[0.90, 0.80],
                     [0.85, 0.10]])
    np.testing.assert_array_equal(assign_images(swap), [1, 0])
    np.testing.assert_allclose(matched_sims(swap, assign_images(swap)), [0.80, 0.85])
    # MMC4's own lapjv test: images 1 and 2 are matched (1.5, 2.6); image 0 is left over and takes its argmax (0).
    mmc4 = np.array([[1.0, 1.0],
                     [1.5, 1.0],
                     [3.0, 2.6]])
    np.testing.assert_array_equal(assign_images(mmc4), [0, 0, 1])
    np.testing.assert_array_equal(assign_images(np.eye(3)[:, ::-1]), [2, 1, 0])


def test_deterministic_on_ties():
    sim = np.full((3, 5), 0.3)
    first = assign_images(sim)
    assert len(set(first.tolist())) == 3
    for _ in range(3):
        np.testing.assert_array_equal(assign_images(sim.copy()), first)


def test_empty_and_bad_inputs():
    assert assign_images(np.zeros((0, 4))).shape == (0,)
    assert assign_images(np.zeros((0, 0))).dtype == np.int64
    assert matched_sims(np.zeros((0, 4)), np.empty(0)).shape == (0,)
    with pytest.raises(ValueError, match="no sentence"):
        assign_images(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="2-D"):
        assign_images(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        assign_images(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match="expected"):
        matched_sims(np.zeros((2, 3)), np.array([0]))
