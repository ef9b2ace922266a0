"""Memorisation checks: exact nearest neighbours (torch and faiss), the Mann-Whitney z-score, and a
"generator" that returns its training images (plus tiny noise) flagged by all three statistics,
while one that returns held-out real images is not."""

import pytest
import torch

from helpers import compose
from gan_platform.data.digits import load_digit_images
from gan_platform.evaluation.image_sets import export_images
from gan_platform.evaluation.memorization.copying import mann_whitney_z
from gan_platform.evaluation.memorization.neighbours import choose_backend, nearest

FRACTION = 0.6  # dataset.fraction: the first 60% of each class train, the rest is held out


def _points(seed, n, d=8):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_nearest_neighbours_are_exact(backend):
    if backend == "faiss":
        pytest.importorskip("faiss", reason="faiss-cpu: the features extra (scripts/test installs it)")
    base, queries = _points(0, 300), _points(1, 70)
    dist, idx = nearest(queries, base, 3, backend=backend, chunk=16)
    brute = torch.cdist(queries.double(), base.double())
    expected_d, expected_i = brute.topk(3, dim=1, largest=False)
    assert torch.equal(idx, expected_i) and torch.allclose(dist.double(), expected_d, atol=1e-4)
    self_d, self_i = nearest(base, base, 1, exclude_self=True, backend=backend)
    brute = torch.cdist(base.double(), base.double()).fill_diagonal_(float("inf"))
    assert torch.equal(self_i[:, 0], brute.argmin(1)) and torch.allclose(self_d[:, 0].double(), brute.min(1).values, atol=1e-4)
    twin = torch.cat([base, base[:1]])  # a duplicate row is its twin's neighbour at distance 0
    assert nearest(twin, twin, 1, exclude_self=True, backend=backend)[0][0, 0] == pytest.approx(0.0, abs=1e-3)


def test_the_back_end_is_torch_unless_faiss_is_asked_for():
    from gan_platform.errors import ConfigError

    assert (choose_backend("auto"), choose_backend("torch")) == ("torch", "torch")
    with pytest.raises(ConfigError, match="eval.nn_search must be one of auto, torch, faiss"):
        choose_backend("annoy")


def test_the_mann_whitney_z_is_scipys_with_ties_and_the_continuity_correction():
    from scipy.stats import mannwhitneyu

    g = torch.Generator().manual_seed(0)  # the draw fixed: the order tests run in must not pick it
    q, p = torch.randint(0, 8, (40,), generator=g).double(), torch.randint(4, 12, (55,), generator=g).double()  # many ties
    u = mannwhitneyu(q.numpy(), p.numpy(), alternative="less").statistic
    assert mann_whitney_z(q, p) == pytest.approx((u - 40 * 55 / 2 + 0.5) / (40 * 55 * (40 + 55 + 1) / 12) ** 0.5, rel=1e-12)
    assert mann_whitney_z(p, q) > 3 > -3 > mann_whitney_z(q, p)


def _digit_split():
    """(training images, held-out half P, held-out half Q), uint8, as dataset=digits dataset.fraction=0.6 splits them."""
    x, y = load_digit_images(16)
    train = torch.zeros(len(x), dtype=torch.bool)
    for c in range(10):
        rows = torch.nonzero(y == c).flatten()
        train[rows[:max(1, round(FRACTION * len(rows)))]] = True
    held = x[~train]
    return x[train], held[0::2], held[1::2]


class StandIn:
    """A generator that hands out given images (uint8 -> [-1, 1]), drawn with replacement, plus noise."""

    def __init__(self, images, noise=0.0, seed=0):
        self.pool, self.noise, self.z_dim, self.num_classes = images.float() / 127.5 - 1, noise, 4, 0
        self.g = torch.Generator().manual_seed(seed)

    def sample(self, n, labels=None, z=None):
        picked = self.pool[torch.randint(len(self.pool), (n,), generator=self.g)]
        return (picked + self.noise * torch.randn(picked.shape, generator=self.g)).clamp(-1, 1)


def test_a_copying_generator_is_flagged_by_all_three_and_held_out_images_are_not(tmp_path):
    from accelerate import Accelerator
    from hydra.utils import instantiate

    from gan_platform.evaluation.build import build_gan_evaluator

    train_u8, held_p, held_q = _digit_split()
    export_images(held_p, None, {"what": "held-out digits"}, tmp_path / "heldout.npz")
    cfg = compose(["dataset=digits", f"dataset.fraction={FRACTION}", "model=dcgan", "eval.num_samples=400",
                   "eval.memorization=true", f"eval.heldout={tmp_path / 'heldout.npz'}"])
    data = instantiate(cfg.dataset)
    assert len(data) == len(train_u8) and torch.equal(data.x, train_u8)
    ev = build_gan_evaluator(cfg, data, StandIn(train_u8), Accelerator(cpu=True))
    copies = ev.evaluate(StandIn(train_u8, noise=0.01, seed=1), step=1)
    fresh = ev.evaluate(StandIn(held_q, seed=2), step=2)
    reference = ev.protocol()["memorization"]
    assert reference["heldout_samples"] == len(held_p) and reference["ct_cells"] == 10
    # copies: no authentic sample, much closer than real data, C_T far below 0
    assert copies["memorization/authpct"] < 5 and copies["memorization/nn_ratio"] < 0.2 and copies["memorization/ct"] < -3
    # unseen real digits: what the held-out set itself scores, C_T about 0
    assert fresh["memorization/authpct"] == pytest.approx(reference["heldout_authpct"], abs=10)
    assert fresh["memorization/authpct"] > 30 and 0.8 < fresh["memorization/nn_ratio"] < 1.25
    assert abs(fresh["memorization/ct"]) < 2
    # the picture's rows: a copy's nearest training image by pixels is the image it copies
    check, copy_images = ev.copy_check, StandIn(train_u8, noise=0.01, seed=3).sample(50)
    found = check.neighbours(ev.extract(copy_images)["features"], ((copy_images + 1) * 127.5).round().byte(), 4)
    held_found = check.neighbours(ev.extract(held_q[:50].float() / 127.5 - 1)["features"], held_q[:50], 4)
    assert found["pixels"][0].shape == (4, 3) and found["images"].shape == (4, 1, 16, 16)
    assert found["pixels"][0][:, 0].max() < 0.3 < 1.0 < held_found["pixels"][0][:, 0].min()
