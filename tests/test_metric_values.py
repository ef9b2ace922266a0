"""Metric values checked against what they must be: the Inception Score of known distributions and
as torch-fidelity and torchmetrics compute it, class accuracy and per-class FID of a stand-in that
shows real digits, the FID of one's own feature extractor, and the truncated normal of truncation."""

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import compose
from gan_platform.evaluation.inception_score import inception_score
from gan_platform.runs.generator import truncated_noise


def test_the_inception_score_is_10_for_ten_even_sure_classes_and_1_for_constant_logits():
    sure = 60.0 * F.one_hot(torch.arange(1000) % 10, 10).double()       # every image sure of its class, classes even
    assert inception_score(sure, splits=1)[0] == pytest.approx(10.0, rel=1e-9)
    mean, std = inception_score(sure, splits=10, shuffle=False)          # every split holds each class ten times
    assert mean == pytest.approx(10.0, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    assert inception_score(torch.randn(1, 30).expand(1000, 30), splits=10) == pytest.approx((1.0, 0.0), abs=1e-12)
    two = 60.0 * F.one_hot(torch.arange(1000) % 2, 10).double()         # two classes: exp(log 2)
    assert inception_score(two, splits=4, shuffle=False)[0] == pytest.approx(2.0, rel=1e-9)


def test_the_inception_score_is_torch_fidelitys_and_its_std_the_population_one():
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torchmetrics.image.inception import InceptionScore

    from gan_platform.evaluation.inception_score import SHUFFLE_SEED, Precomputed

    logits = 3 * torch.randn(1000, 25, generator=torch.Generator().manual_seed(0))
    ours = inception_score(logits, splits=10)
    theirs = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=SHUFFLE_SEED)
    assert ours == pytest.approx((theirs["inception_score_mean"], theirs["inception_score_std"]), rel=1e-12)
    # torchmetrics on the same ten splits: the same mean, and the std of n - 1 (sqrt(10 / 9) larger)
    import numpy as np

    shuffled = logits[torch.from_numpy(np.random.RandomState(SHUFFLE_SEED).permutation(1000))]
    torch.manual_seed(5)
    order = torch.randperm(1000)               # the permutation torchmetrics will draw under the same seed
    fed = torch.empty_like(shuffled)
    fed[order] = shuffled                       # so that it sees our splits
    metric = InceptionScore(feature=Precomputed(25), splits=10)
    metric.update(fed)
    torch.manual_seed(5)
    tm_mean, tm_std = (float(v) for v in metric.compute())
    assert tm_mean == pytest.approx(ours[0], rel=1e-5) and tm_std == pytest.approx(ours[1] * math.sqrt(10 / 9), rel=1e-4)


@pytest.mark.slow
def test_the_platforms_inception_score_is_torchmetrics_on_the_same_images(tmp_path):
    """The whole path, images to number, with the test's random-weight Inception file."""
    from torchmetrics.image.fid import NoTrainInceptionV3
    from torchmetrics.image.inception import InceptionScore

    from helpers.evaluation import inception_shaped_weights
    from gan_platform.evaluation.features import INCEPTION_FILE, InceptionFeatures
    from gan_platform.evaluation.image_sets import to_uint8

    weights = inception_shaped_weights(tmp_path / INCEPTION_FILE)
    images = torch.rand(6, 3, 24, 24, generator=torch.Generator().manual_seed(1)) * 2 - 1
    _, logits = InceptionFeatures(weights).features_and_logits(images)
    network = NoTrainInceptionV3(name="inception-v3-compat", features_list=["logits_unbiased"],
                                 feature_extractor_weights_path=str(weights), antialias=False)
    metric = InceptionScore(feature=network, splits=1)
    metric.update(to_uint8(images))
    assert inception_score(logits, splits=1)[0] == pytest.approx(float(metric.compute()[0]), rel=1e-5)


class RealDigits:
    """A conditional stand-in for G: for label c, a digit of the classifier's held-out third showing
    class c (or, `shuffled`, a class drawn at random)."""

    def __init__(self, shuffled=False, seed=0):
        from gan_platform.data.digits import load_digit_images
        from gan_platform.evaluation.digit_classifier import _split

        x, y = load_digit_images(16)
        held = _split(len(x))[1]
        self.by_class = [x[held][y[held] == c].float() / 127.5 - 1 for c in range(10)]
        self.shuffled, self.z_dim, self.num_classes = shuffled, 4, 10
        self.g = torch.Generator().manual_seed(seed)

    def sample(self, n, labels, z=None):
        shown = torch.randint(10, (n,), generator=self.g) if self.shuffled else labels
        return torch.stack([self.by_class[c][torch.randint(len(self.by_class[c]), (1,), generator=self.g)][0]
                            for c in shown.tolist()])


def test_class_accuracy_is_the_classifiers_held_out_accuracy_and_per_class_fid_about_zero():
    from accelerate import Accelerator
    from hydra.utils import instantiate

    from gan_platform.evaluation.build import build_gan_evaluator
    from gan_platform.evaluation.digit_classifier import SHIPPED

    cfg = compose(["dataset=digits", "model=dcgan", "task.conditional=true", "eval.num_samples=3000"])
    data = instantiate(cfg.dataset)
    ev = build_gan_evaluator(cfg, data, RealDigits(), Accelerator(cpu=True))
    right, wrong = ev.evaluate(RealDigits(seed=1), step=1), ev.evaluate(RealDigits(shuffled=True, seed=2), step=2)
    assert right["eval/class_accuracy"] == pytest.approx(SHIPPED[16].test_accuracy, abs=0.01)   # 0.985
    assert wrong["eval/class_accuracy"] == pytest.approx(0.1, abs=0.025)
    per_class = [right[f"eval/fid_class_{c}"] for c in range(10)]
    assert max(per_class) < 0.1 * min(wrong[f"eval/fid_class_{c}"] for c in range(10))
    assert right["eval/fid_class_mean"] < 0.05 * wrong["eval/fid_class_mean"] and right["eval/fid"] < 1.0


def test_the_fid_on_ones_own_features_is_the_distance_of_those_features():
    """A first-coordinate extractor on the ring: moving the samples by 1 along x gives FID 1 (the
    squared mean shift), along y nothing."""
    from accelerate import Accelerator
    from hydra.utils import instantiate

    from helpers.evaluation import PerfectSampler
    from gan_platform.evaluation.build import build_gan_evaluator

    cfg = compose(["dataset=ring8", "model=mlp", "eval.num_samples=5000", "eval.features=mine",
                   "+eval.extractors.mine._target_=test_config_targets.first_coordinate"])
    data = instantiate(cfg.dataset)
    ev = build_gan_evaluator(cfg, data, PerfectSampler(data), Accelerator(cpu=True))

    class Moved(PerfectSampler):
        def __init__(self, by, seed):
            super().__init__(data, seed)
            self.by = torch.tensor(by)

        def sample(self, n, labels=None, z=None):
            return super().sample(n) + self.by

    assert ev.protocol()["extractor"] == "first_coordinate" and ev.protocol()["num_features"] == 1
    assert ev.evaluate(Moved([1.0, 0.0], 1), step=1)["eval/fid"] == pytest.approx(1.0, abs=0.06)
    assert ev.evaluate(Moved([0.0, 1.0], 2), step=2)["eval/fid"] == pytest.approx(0.0, abs=0.01)


def test_truncated_noise_is_the_truncated_normal_not_a_uniform():
    from scipy import stats

    z = truncated_noise(25000, 8, 0.5, torch.Generator().manual_seed(0)).flatten().double().numpy()
    law = stats.truncnorm(-0.5, 0.5)
    assert law.std() == pytest.approx(0.28388, abs=1e-5) and z.std() == pytest.approx(law.std(), abs=0.001)
    assert stats.kstest(z, law.cdf).pvalue > 0.01
    assert stats.kstest(z, stats.uniform(-0.5, 1.0).cdf).pvalue < 1e-9   # a uniform draw passed the old check


def test_the_stacked_digit_floor_beside_the_numbers_is_what_real_triples_score():
    """The protocol's real_data_scores: fresh real triples at the evaluation's own count, what a perfect
    generator scores (its KL is not 0 at a finite count, and falls as the count grows)."""
    from accelerate import Accelerator
    from hydra.utils import instantiate

    from helpers.evaluation import PerfectSampler
    from gan_platform.evaluation.build import build_gan_evaluator

    floors = {}
    for n in (3000, 6000):
        cfg = compose(["dataset=stacked_digits", "model=dcgan", f"eval.num_samples={n}", "eval.num_real=2000"])
        data = instantiate(cfg.dataset)
        ev = build_gan_evaluator(cfg, data, PerfectSampler(data), Accelerator(cpu=True))
        floors[n] = ev.protocol()["real_data_scores"]
        perfect = ev.evaluate(PerfectSampler(data, n), step=1)
        assert floors[n]["num_samples"] == n
        for key in ("collapse/reverse_kl", "collapse/argmax_reverse_kl", "collapse/high_quality"):
            assert perfect[key] == pytest.approx(floors[n][key], rel=0.15), key
    assert floors[3000]["collapse/argmax_reverse_kl"] > 1.5 * floors[6000]["collapse/argmax_reverse_kl"] > 0.05


def test_fd_at_infinity_reaches_training_through_the_builder():
    from accelerate import Accelerator
    from hydra.utils import instantiate

    from helpers.evaluation import PerfectSampler
    from gan_platform.evaluation.build import build_gan_evaluator

    cfg = compose(["dataset=ring8", "model=mlp", "eval.num_samples=1000", "eval.fd_inf=true", "eval.fd_inf_points=5"])
    data = instantiate(cfg.dataset)
    ev = build_gan_evaluator(cfg, data, PerfectSampler(data), Accelerator(cpu=True))
    out = ev.evaluate(PerfectSampler(data, 1), step=1)
    assert ev.protocol()["fd_inf_counts"] == [100, 325, 550, 775, 1000] and len(ev.fd_inf_values) == 5
    assert abs(out["eval/fd_inf"]) < out["eval/fid"] < ev.fd_inf_values[0]   # a perfect sampler: the bias is all of FID
