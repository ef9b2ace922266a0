"""FD at infinity (Chong and Forsyth 2020): counts, the straight line in 1/N, and Gaussian features
whose true Fréchet distance is known in closed form."""

import numpy as np
import pytest
import torch

from gan_platform.evaluation.fd_infinity import extrapolate, fd_at_infinity, fd_inf_counts
from gan_platform.evaluation.reference import ReferenceStats


def test_the_counts_run_from_a_tenth_of_the_samples_to_all_of_them():
    assert fd_inf_counts(50000) == [5000 + round(i * 45000 / 14) for i in range(15)]  # the paper's 5,000 .. 50,000
    assert fd_inf_counts(2000, 4) == [200, 800, 1400, 2000]
    assert fd_inf_counts(10, 15) == list(range(2, 11))  # few samples: no count twice
    with pytest.raises(ValueError):
        fd_inf_counts(2)


def test_the_extrapolation_is_the_least_squares_line_at_one_over_n_zero():
    counts = [100, 200, 400, 800]
    values = [3.0 + 250.0 / n for n in counts]          # exactly FD_inf + k / N
    assert extrapolate(counts, values) == pytest.approx((3.0, 250.0), rel=1e-9)
    noisy = [v + e for v, e in zip(values, (0.01, -0.01, 0.01, -0.01))]
    assert extrapolate(counts, noisy)[0] == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fd_at_infinity_is_closer_to_the_true_distance_than_fid_at_the_smallest_count(seed):
    """Real N(0, I), generated N(0.3, 1.5^2 I) in d = 32: the true Fréchet distance is
    d 0.3^2 + d (1.5 - 1)^2 = 10.88; FID of few samples is biased upward."""
    d = 32
    real = ReferenceStats(np.zeros(d), np.eye(d), None)   # the law itself, no sampling error
    true = d * 0.3 ** 2 + d * (1.5 - 1.0) ** 2
    fake = torch.randn(2000, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.5 + 0.3
    counts = fd_inf_counts(len(fake))
    fd_inf, values = fd_at_infinity(real, fake, counts)
    assert len(values) == 15 and values[0] > true + 1.5          # FID at 200 samples: well above 10.88
    assert abs(fd_inf - true) < 0.25 * abs(values[0] - true)
    assert fd_inf == pytest.approx(true, rel=0.05)
    assert fd_at_infinity(real, fake, counts)[0] == fd_inf        # seeded subsets: the same number again
