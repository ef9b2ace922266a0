"""Metric values on known distributions: FID/KID closed forms, prdc equality, collapse counts."""

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from gan_platform.data.mixtures import grid25, ring8
from gan_platform.evaluation.collapse import MixtureCollapse, ModeHistogram, class_mode_accuracy, kl_to_uniform
from gan_platform.evaluation.kid import kernel_inception_distance
from gan_platform.evaluation.manifold import precision_recall_density_coverage
from gan_platform.evaluation.reference import ReferenceStats, frechet_distance


def _fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    return frechet_distance(ReferenceStats.of(real), ReferenceStats.of(fake))


@pytest.mark.parametrize("d", [2, 8])
def test_fid_closed_forms(d):
    g = torch.Generator().manual_seed(0)
    n = 40000
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, d, generator=g, dtype=torch.float64)
    assert _fid(a, a) == pytest.approx(0.0, abs=1e-6)                    # identical Gaussians: 0
    assert _fid(a, b) == pytest.approx(0.0, abs=0.01 * d)                # same law, other draw: ~0
    assert _fid(a, b + 1.0) == pytest.approx(d, rel=0.03)                # N(0,I) vs N(1,I): ||1||^2 = d
    assert _fid(a, 2.0 * b) == pytest.approx(d, rel=0.03)                # N(0,I) vs N(0,4I): tr(I + 4I - 2(4I)^1/2) = d


def test_fid_real_statistics_are_kept_across_evaluations():
    g = torch.Generator().manual_seed(1)
    real = ReferenceStats.of(torch.randn(5000, 3, generator=g, dtype=torch.float64))
    for shift, expected in ((1.0, 3.0), (0.0, 0.0), (2.0, 12.0)):
        fake = torch.randn(5000, 3, generator=g, dtype=torch.float64) + shift
        assert frechet_distance(real, ReferenceStats.of(fake)) == pytest.approx(expected, abs=0.15)
    assert real.num_samples == 5000


def test_kid_is_near_zero_for_the_same_law_and_positive_for_a_shift():
    g = torch.Generator().manual_seed(2)
    real, same, shifted = (torch.randn(1000, 4, generator=g) + s for s in (0.0, 0.0, 1.0))
    assert abs(kernel_inception_distance(real, same, 10, 500)[0]) < 0.02
    assert kernel_inception_distance(real, shifted, 10, 500)[0] > 0.5


def test_kid_equals_torchmetrics_under_the_same_seed():
    """The platform's KID is torchmetrics' KernelInceptionDistance, subsets included (same draws)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    from gan_platform.evaluation.gan_evaluator import Precomputed

    g = torch.Generator().manual_seed(4)
    real, fake = torch.randn(700, 6, generator=g), torch.randn(600, 6, generator=g) * 1.2 + 0.3
    kid = KernelInceptionDistance(feature=Precomputed(6), subsets=7, subset_size=300)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    torch.manual_seed(11)
    expected = [float(v) for v in kid.compute()]
    torch.manual_seed(11)
    got = kernel_inception_distance(real, fake, 7, 300)
    assert got == pytest.approx(expected, rel=1e-5) and expected[0] > 0.05
    with pytest.raises(ValueError, match="subset size 800 exceeds"):
        kernel_inception_distance(real, fake, 2, 800)


@pytest.mark.parametrize("n_real,n_fake,d,k", [(400, 350, 8, 5), (300, 300, 2, 3)])
def test_prdc_equals_the_reference_package(n_real, n_fake, d, k):
    import prdc

    rng = np.random.default_rng(n_real + d)
    real = rng.normal(size=(n_real, d)).astype(np.float32)
    fake = (rng.normal(size=(n_fake, d)) * 1.3 + 0.4).astype(np.float32)
    with contextlib.redirect_stdout(io.StringIO()):
        expected = prdc.compute_prdc(real, fake, k)
    got = precision_recall_density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k, chunk=64)
    for name in ("precision", "recall", "density", "coverage"):
        assert got[name] == pytest.approx(float(expected[name]), abs=1e-9), name
    assert 0.2 < got["precision"] < 0.99 and 0.2 < got["coverage"] < 0.99  # a case where the numbers mean something


def test_prdc_of_a_perfect_and_a_collapsed_generator():
    g = torch.Generator().manual_seed(3)
    real = torch.randn(1000, 2, generator=g)
    good = precision_recall_density_coverage(real, torch.randn(1000, 2, generator=g))
    collapsed = precision_recall_density_coverage(real, 0.01 * torch.randn(1000, 2, generator=g))
    assert good["precision"] > 0.8 and good["recall"] > 0.8 and good["coverage"] > 0.9
    assert collapsed["precision"] > 0.95 and collapsed["recall"] < 0.05 and collapsed["coverage"] < 0.05


@pytest.mark.parametrize("make,modes", [(ring8, 8), (grid25, 25)])
def test_a_perfect_sampler_covers_every_mode_with_98_9_percent_quality(make, modes):
    data = make()
    metric = MixtureCollapse(data.means, data.sigma)
    x, _ = data.sample(25000, torch.Generator().manual_seed(4))
    metric.update(x)
    res = metric.compute()
    assert res["modes"] == modes
    assert res["high_quality"] == pytest.approx(100 * (1 - math.exp(-4.5)), abs=0.3)   # 98.9%
    assert res["reverse_kl"] < 0.01


def test_a_collapsed_sampler_scores_one_mode_and_log_k():
    data = ring8()
    metric = MixtureCollapse(data.means, data.sigma)
    metric.update(data.means[3] + data.sigma * torch.randn(2500, 2, generator=torch.Generator().manual_seed(5)))
    res = metric.compute()
    assert res["modes"] == 1 and res["high_quality"] > 98 and res["reverse_kl"] == pytest.approx(math.log(8))
    # samples between the modes are neither covering nor high quality
    metric.reset()
    metric.update(torch.zeros(2500, 2))
    assert metric.compute() == {"modes": 0.0, "high_quality": 0.0, "reverse_kl": pytest.approx(math.log(8))}


def test_a_mode_needs_its_share_of_samples_to_count_as_covered():
    data = ring8()
    metric = MixtureCollapse(data.means, data.sigma, threshold=0.2)   # fair share 2500/8 = 312.5 -> 62.5
    x = torch.cat([data.means[0].expand(2440, 2), data.means[1].expand(60, 2)])
    metric.update(x)
    assert metric.compute()["modes"] == 1
    metric.reset()
    metric.update(torch.cat([data.means[0].expand(2430, 2), data.means[1].expand(70, 2)]))
    assert metric.compute()["modes"] == 2


def test_mode_histogram_and_kl_to_uniform():
    h = ModeHistogram(1000)
    h.update(torch.arange(26000) % 1000)
    res = h.compute()
    assert res["modes"] == 1000 and res["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    h.reset()
    h.update(torch.tensor([5, 5, 7, 7]))
    res = h.compute()
    assert res["modes"] == 2 and res["reverse_kl"] == pytest.approx(math.log(500)) and res["entropy"] == pytest.approx(math.log(2))
    assert kl_to_uniform(torch.tensor([1, 0, 0, 0])) == pytest.approx(math.log(4))


def test_class_mode_accuracy_counts_samples_on_their_own_mode():
    data = ring8()
    labels = torch.arange(800) % 8
    on_mode = data.means[labels]
    assert class_mode_accuracy(on_mode, labels, data.means, data.sigma) == 1.0
    assert class_mode_accuracy(on_mode, (labels + 1) % 8, data.means, data.sigma) == 0.0
    half = torch.where((torch.arange(800) < 400)[:, None], on_mode, data.means[0].expand(800, 2))
    assert class_mode_accuracy(half, labels, data.means, data.sigma) == pytest.approx(0.5 + 0.5 / 8)
