"""ADA's `bgc` pipeline against the paper: each transformation's rate and magnitude, the resampling
filter, no leak below p = 1, gradients to the input."""

import math

import pytest
import torch

from gan_platform.augment import AdaptiveAugment
from gan_platform.augment.blit import translate_reflect
from gan_platform.augment.geometric import (SYM6, TAPS, _matrices, _rotation, _scaling, _translation, downsampling_matrix,
                                            draw_geometric, lowpass, resample, upsampling_matrix)

DRAWS = 20_000


def ada(p, *transforms):
    return AdaptiveAugment(initial_p=p, transforms=list(transforms))


def changed(out, x, tol=1e-4):
    return (out - x).flatten(1).abs().amax(1) > tol


def within_three_standard_errors(hits, expected):
    se = math.sqrt(expected * (1 - expected) / len(hits))
    rate = hits.float().mean().item()
    assert abs(rate - expected) < 3 * se, (rate, expected, se)


def asymmetric(n, c, size, seed=0):
    """Random images with no mirror or rotation symmetry, the same one n times."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, c, size, size, generator=g) * 2 - 1).expand(n, c, size, size).contiguous()


# -- the resampling filter ---------------------------------------------------------------------
def test_sym6_is_an_orthogonal_lowpass_with_six_vanishing_moments():
    h = lowpass(torch.device("cpu"), torch.float64)
    assert len(SYM6) == TAPS == 12 and h.sum().item() == pytest.approx(1.0)
    for shift in range(6):  # orthogonal to its even shifts: sum h[k] h[k + 2m] = delta_m / 2
        assert (h[:TAPS - 2 * shift] * h[2 * shift:]).sum().item() == pytest.approx(0.5 if shift == 0 else 0.0, abs=1e-12)
    k = torch.arange(TAPS, dtype=torch.float64)
    for moment in range(6):  # the high-pass (-1)^k h[k] kills polynomials of degree < 6
        assert ((-1) ** k * k**moment * h).sum().item() == pytest.approx(0.0, abs=1e-9 * 11**moment)
    # downsampling after upsampling is the identity on the image, whatever the padding
    f = lowpass(torch.device("cpu"), torch.float64)
    up, down = upsampling_matrix(8, 7, f), downsampling_matrix(8, f)
    window = up[2 * 7 - 5: 2 * 7 - 5 + 2 * 8 + TAPS - 2]  # the upsampled samples the output window holds
    assert torch.allclose(down @ window, torch.eye(8, dtype=torch.float64), atol=1e-10)


def test_resampling_is_the_identity_undrawn_and_moves_pixels_where_the_matrix_says():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert (resample(x, _matrices(3, x.device)) - x).abs().max() < 1e-4
    # a translation by one pixel is a shift (inside the image)
    moved = resample(x, _translation(torch.tensor([[-1.0, 0.0]] * 3)))  # inverse map: input = output - 1
    assert (moved[..., 1:] - x[..., :-1]).abs().max() < 1e-4
    # a smooth image turned a quarter turn, mirrored, or shrunk: the blob lands where the map puts it
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    blob = torch.exp(-((xs - 4) ** 2 + (ys - 6) ** 2) / (2 * 1.5**2)).view(1, 1, 16, 16)
    centre = lambda img, c: ((img * c).sum() / img.sum()).item()  # noqa: E731
    quarter = resample(blob, _rotation(torch.tensor([-math.pi / 2])))
    mirrored = resample(blob, _scaling(torch.tensor([-1.0]), torch.tensor([1.0])))
    for out, expected in ((quarter, torch.rot90(blob, -1, dims=(2, 3))), (mirrored, blob.flip(3))):
        assert (out - expected).abs().max() < 0.05  # the filter's uneven phase, mirrored, blurs a little
        for c in (xs, ys):
            assert centre(out[0, 0], c) == pytest.approx(centre(expected[0, 0], c), abs=0.02)
    small = torch.exp(-((xs - 6.5) ** 2 + (ys - 8.5) ** 2) / 2).view(1, 1, 16, 16)  # sigma 1
    double = resample(small, _scaling(torch.tensor([0.5]), torch.tensor([0.5])))[0, 0]  # inverse 1/2: twice the size
    assert centre(double, xs) == pytest.approx(7.5 + 2 * (6.5 - 7.5), abs=0.05)
    assert centre(double, ys) == pytest.approx(7.5 + 2 * (8.5 - 7.5), abs=0.05)
    assert math.sqrt(centre(double, (xs - centre(double, xs)) ** 2)) == pytest.approx(2.0, abs=0.1)


def test_at_p_zero_the_whole_pipeline_is_the_identity():
    torch.manual_seed(10)
    for c in (1, 3):
        x = torch.rand(64, c, 16, 16) * 2 - 1
        assert (AdaptiveAugment(initial_p=0.0)(x) - x).abs().max() < 1e-4


# -- rates: how often each transformation changes an image, over 20,000 draws at p = 0.5 -------------
def test_blit_rates_are_the_papers():
    torch.manual_seed(1)
    x = asymmetric(DRAWS, 1, 16)
    within_three_standard_errors(changed(ada(0.5, "xflip")(x), x), 0.5 / 2)
    within_three_standard_errors(changed(ada(0.5, "rotate90")(x), x), 0.5 * 3 / 4)
    # a shift of round(U(-2, 2)) pixels per axis on 16 x 16 rounds to 0 with probability 1/4 per axis
    within_three_standard_errors(changed(ada(0.5, "xint")(x), x), 0.5 * (1 - 1 / 16))


@pytest.mark.parametrize("name", ["scale", "rotate", "aniso", "xfrac"])
def test_geometric_rates_are_the_papers(name):
    torch.manual_seed(2)
    pipeline = ada(0.5, name)
    hits = torch.cat([changed(pipeline(x), x) for x in asymmetric(DRAWS, 1, 4).split(5000)])
    within_three_standard_errors(hits, 0.5)


def test_colour_rates_are_the_papers():
    torch.manual_seed(3)
    grey, rgb = asymmetric(DRAWS, 1, 4), asymmetric(DRAWS, 3, 4)
    for name, x, rate in (("brightness", grey, 0.5), ("contrast", grey, 0.5), ("lumaflip", grey, 0.25),
                          ("hue", rgb, 0.5), ("saturation", rgb, 0.5)):
        within_three_standard_errors(changed(ada(0.5, name)(x), x), rate)
    for name in ("hue", "saturation"):  # grey has no chroma to turn or scale
        assert (ada(1.0, name)(grey[:100]) - grey[:100]).abs().max() < 1e-6


def test_rotation_probability_splits_so_that_either_rotation_happens_with_p():
    torch.manual_seed(4)
    M = draw_geometric(DRAWS, torch.tensor(0.3), {"rotate"}, (8, 8), torch.device("cpu"))
    turned = (M[:, 0, 1].abs() > 1e-6)
    within_three_standard_errors(turned, 0.3)  # 1 - (1 - (1 - sqrt(0.7)))^2


# -- magnitudes, by value ----------------------------------------------------------------------
def test_blit_magnitudes():
    torch.manual_seed(5)
    n = 4000
    x = torch.arange(256.0).view(1, 1, 16, 16).expand(n, 1, 16, 16)  # every pixel unique
    flipped = ada(1.0, "xflip")(x)
    is_flip = (flipped == x.flip(3)).flatten(1).all(1)
    assert ((flipped == x).flatten(1).all(1) | is_flip).all()
    within_three_standard_errors(is_flip, 0.5)
    turned = ada(1.0, "rotate90")(x)
    k = torch.stack([(turned == torch.rot90(x, q, dims=(2, 3))).flatten(1).all(1) for q in range(4)], 1)
    assert (k.sum(1) == 1).all()
    for q in range(4):
        within_three_standard_errors(k[:, q], 0.25)
    shifted = ada(1.0, "xint")(x)  # up to 2 of 16 pixels each way; the shift of each image recovered
    found = torch.full((n, 2), 99)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            same = (shifted == translate_reflect(x, torch.full((n,), dy), torch.full((n,), dx))).flatten(1).all(1)
            found[same] = torch.tensor([dy, dx])
    assert (found != 99).all()  # every output is the input shifted by at most 2 pixels, reflected
    for axis in (0, 1):  # round(U(-2, 2)): 0 and +-1 each 1/4, +-2 each 1/8
        for shift, rate in ((0, 0.25), (1, 0.25), (-1, 0.25), (2, 0.125), (-2, 0.125)):
            within_three_standard_errors(found[:, axis] == shift, rate)


def test_colour_magnitudes():
    torch.manual_seed(6)
    n = 4000
    x = asymmetric(n, 3, 4)
    bright = ada(1.0, "brightness")(x) - x  # + b on every channel and pixel, b ~ N(0, 0.2^2)
    b = bright[:, 0, 0, 0]
    assert (bright - b.view(n, 1, 1, 1)).abs().max() < 1e-5
    assert b.std().item() == pytest.approx(0.2, rel=3 / math.sqrt(2 * n)) and abs(b.mean().item()) < 3 * 0.2 / math.sqrt(n)
    contrast = ada(1.0, "contrast")(x) / x  # x c about 0, log2 c ~ N(0, 0.5^2)
    c = contrast[:, 0, 0, 0]
    assert (contrast - c.view(n, 1, 1, 1)).abs().max() < 1e-4
    assert torch.log2(c).std().item() == pytest.approx(0.5, rel=3 / math.sqrt(2 * n))
    grey, chroma = x.mean(1, keepdim=True), x - x.mean(1, keepdim=True)
    flipped = ada(1.0, "lumaflip")(x)  # the grey part inverted, the chroma kept, for half the images
    is_flip = (flipped - (chroma - grey)).flatten(1).abs().amax(1) < 1e-5
    assert (is_flip | ((flipped - x).flatten(1).abs().amax(1) < 1e-6)).all()
    within_three_standard_errors(is_flip, 0.5)
    saturated = ada(1.0, "saturation")(x)  # grey kept, chroma x s, log2 s ~ N(0, 1)
    assert (saturated.mean(1, keepdim=True) - grey).abs().max() < 1e-5
    s = (saturated - saturated.mean(1, keepdim=True)) / chroma
    assert (s - s[:, :1, :1, :1]).abs().max() < 1e-3
    assert torch.log2(s[:, 0, 0, 0]).std().item() == pytest.approx(1.0, rel=3 / math.sqrt(2 * n))
    turned = ada(1.0, "hue")(x)  # grey and the chroma's length kept; the angle uniform in (-pi, pi)
    new_chroma = turned - turned.mean(1, keepdim=True)
    assert (turned.mean(1, keepdim=True) - grey).abs().max() < 1e-5
    assert (new_chroma.norm(dim=1) - chroma.norm(dim=1)).abs().max() < 1e-4
    cos = (new_chroma * chroma).sum(1) / (chroma.norm(dim=1) ** 2)
    angle = torch.acos(cos[:, 0, 0].clamp(-1, 1))  # |theta|, uniform on (0, pi): mean pi/2, std pi/sqrt(12)
    assert angle.mean().item() == pytest.approx(math.pi / 2, abs=3 * math.pi / math.sqrt(12 * n))


def test_geometric_magnitudes():
    torch.manual_seed(7)
    M = draw_geometric(DRAWS, torch.tensor(1.0), {"scale"}, (16, 16), torch.device("cpu"))
    assert torch.log2(1 / M[:, 0, 0]).std().item() == pytest.approx(0.2, rel=3 / math.sqrt(2 * DRAWS))
    assert torch.equal(M[:, 0, 0], M[:, 1, 1])
    M = draw_geometric(DRAWS, torch.tensor(1.0), {"aniso"}, (16, 16), torch.device("cpu"))
    assert torch.allclose(M[:, 0, 0] * M[:, 1, 1], torch.ones(DRAWS))
    assert torch.log2(M[:, 1, 1]).std().item() == pytest.approx(0.2, rel=3 / math.sqrt(2 * DRAWS))
    M = draw_geometric(DRAWS, torch.tensor(1.0), {"xfrac"}, (16, 8), torch.device("cpu"))  # h 16, w 8
    assert (-M[:, 0, 2]).std().item() == pytest.approx(0.125 * 8, rel=3 / math.sqrt(2 * DRAWS))
    assert (-M[:, 1, 2]).std().item() == pytest.approx(0.125 * 16, rel=3 / math.sqrt(2 * DRAWS))
    M = draw_geometric(DRAWS, torch.tensor(1.0), {"rotate"}, (16, 16), torch.device("cpu"))
    angle = torch.atan2(M[:, 1, 0], M[:, 0, 0])  # two turns by U(-pi, pi) at p = 1: a uniform angle
    assert angle.abs().mean().item() == pytest.approx(math.pi / 2, abs=3 * math.pi / math.sqrt(12 * DRAWS))


# -- no leak below p = 1, gradients --------------------------------------------------------------
def mirror_statistic(images):
    """sum over pixels of the image times (x - centre): odd under a left-right mirror."""
    w = images.shape[-1]
    return (images * (torch.arange(w, dtype=images.dtype) - (w - 1) / 2)).flatten(1).sum(1)


def test_an_image_and_its_mirror_stay_apart_at_p_one_half_and_meet_at_p_one():
    """At p = 0.5 the full pipeline's distributions of an asymmetric image and of its mirror differ
    (so G cannot be rewarded for mirrored samples); at p = 1 every flip is a fair coin and they meet."""
    torch.manual_seed(8)
    x = asymmetric(DRAWS, 1, 4, seed=3)
    x[:, :, :, :2] += 0.5  # brighter on the left
    z = {}
    for p in (0.5, 1.0):
        pipeline = AdaptiveAugment(initial_p=p)
        a = torch.cat([mirror_statistic(pipeline(part)) for part in x.split(5000)])
        b = torch.cat([mirror_statistic(pipeline(part)) for part in x.flip(3).split(5000)])
        z[p] = (a.mean() - b.mean()).item() / math.sqrt((a.var() + b.var()).item() / DRAWS)
    assert abs(z[0.5]) > 10 and abs(z[1.0]) < 4, z


def test_gradients_flow_to_the_input_also_through_a_double_backward():
    torch.manual_seed(9)
    x = (torch.rand(5, 3, 8, 8) * 2 - 1).requires_grad_(True)
    weight = torch.randn(1, 3, 3, 3, requires_grad=True)
    out = AdaptiveAugment(initial_p=1.0)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    score = torch.nn.functional.conv2d(out, weight).square().sum()
    (grad,) = torch.autograd.grad(score, x, create_graph=True)  # as R1 on the images before augmentation
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    grad.square().sum().backward()
    assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


def test_every_batch_size_and_unknown_or_unfit_choices_are_one_sentence():
    from gan_platform.errors import ConfigError, UserError

    pipeline = AdaptiveAugment(initial_p=0.7)
    for n in (1, 3):
        assert pipeline(torch.rand(n, 3, 8, 8)).shape == (n, 3, 8, 8)
    with pytest.raises(ConfigError, match=r"augment.transforms has unknown entries \['translation'\]"):
        AdaptiveAugment(transforms=["xflip", "translation"])
    with pytest.raises(UserError, match="rotate90, which needs square images"):
        ada(0.5, "rotate90")(torch.rand(2, 1, 8, 6))
    with pytest.raises(UserError, match="grey .1 channel. or RGB .3 channel. images, and these have 2"):
        ada(0.5, "contrast")(torch.rand(2, 2, 8, 8))
    assert ada(0.5, "xflip", "scale")(torch.rand(2, 2, 8, 6)).shape == (2, 2, 8, 6)  # other shapes, other channels
