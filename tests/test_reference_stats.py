"""Reference statistics files (ours, pytorch-fid's, clean-fid's), the Fréchet distance from them, and
the cache of real features."""

import logging

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from gan_platform.errors import UserError
from gan_platform.evaluation.gan_evaluator import Precomputed
from gan_platform.evaluation.reference import (ReferenceStats, cached_real_features, check_compatible, frechet_distance,
                                               load_reference, save_reference)

PROTOCOL = {"extractor": "inception", "num_features": 8, "weights_sha256": "ab" * 32, "real_sha256": "cd" * 32,
            "resize_mode": "clean"}


def _features(seed, n=600, d=8, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * scale + shift


def _torchmetrics_fid(real, fake):
    fid = FrechetInceptionDistance(feature=Precomputed(real.shape[1]))
    fid.update(real, real=True)
    fid.update(fake, real=False)
    return float(fid.compute())


def test_fid_from_a_reference_file_equals_fid_from_the_raw_features(tmp_path):
    real, fake = _features(0), _features(1, shift=1.0)
    path = save_reference(tmp_path / "ref.npz", ReferenceStats.of(real, PROTOCOL))
    ref = load_reference(path)
    assert ref.num_samples == 600 and ref.protocol == PROTOCOL
    with np.load(path) as data:  # the pytorch-fid / clean-fid layout, plus the protocol fields
        assert data["mu"].shape == (8,) and data["sigma"].shape == (8, 8) and str(data["resize_mode"]) == "clean"
    from_file = frechet_distance(ref, ReferenceStats.of(fake))
    assert from_file == pytest.approx(_torchmetrics_fid(real, fake), rel=1e-6)
    assert from_file == pytest.approx(8.0, rel=0.1)  # N(0, I) vs N(1, I) in 8 dims: 8
    wide = frechet_distance(ReferenceStats.of(_features(2, n=20000)), ReferenceStats.of(_features(3, n=20000, scale=2.0)))
    assert wide == pytest.approx(8.0, rel=0.05)       # N(0, I) vs N(0, 4I) in 8 dims: 8
    assert frechet_distance(ref, ref) == pytest.approx(0.0, abs=1e-9)


def test_a_plain_mu_sigma_file_is_read_with_a_warning_that_its_protocol_is_unknown(tmp_path, caplog):
    real, fake = _features(4), _features(5, shift=0.5)
    stats = ReferenceStats.of(real)
    np.savez(tmp_path / "pytorch_fid.npz", mu=stats.mu.astype(np.float32), sigma=stats.sigma)  # as pytorch-fid saves
    with caplog.at_level(logging.WARNING):
        ref = load_reference(tmp_path / "pytorch_fid.npz")
    assert "protocol" in caplog.text and "unknown" in caplog.text
    assert ref.protocol == {} and ref.num_samples is None
    assert frechet_distance(ref, ReferenceStats.of(fake)) == pytest.approx(_torchmetrics_fid(real, fake), rel=1e-5)
    check_compatible(ref, PROTOCOL, "pytorch_fid.npz")  # nothing to compare with: allowed


@pytest.mark.parametrize("key", ["weights_sha256", "resize_mode", "extractor"])
def test_a_reference_made_with_other_features_is_refused_in_one_sentence(tmp_path, key):
    ref = ReferenceStats.of(_features(6), PROTOCOL)
    with pytest.raises(UserError) as e:
        check_compatible(ref, {**PROTOCOL, key: "other"}, "ref.npz")
    assert key in str(e.value) and "--save-ref" in str(e.value) and str(e.value).count(". ") == 0


def test_files_that_are_not_reference_statistics_are_one_sentence(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    np.savez(tmp_path / "shapes.npz", mu=np.zeros(3), sigma=np.zeros((2, 2)))
    whole = (tmp_path / "other.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])  # a zip's start without its directory
    (tmp_path / "notes.npz").write_text("mu, sigma\n1, 2\n")  # a text file renamed .npz
    for name, phrase in (("junk.npz", "cannot be read"), ("cut.npz", "cannot be read"), ("notes.npz", "cannot be read"),
                         ("other.npz", "holds no 'mu'"), ("shapes.npz", r"sigma \(d, d\)")):
        with pytest.raises(UserError, match=phrase):
            load_reference(tmp_path / name)
    with pytest.raises(UserError, match="same feature extractor"):
        frechet_distance(ReferenceStats.of(_features(7)), ReferenceStats.of(_features(7, d=4)))


def test_real_features_are_cached_by_extractor_data_and_resize(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_PLATFORM_CACHE", str(tmp_path / "cache"))
    computed = []

    def compute():
        computed.append(1)
        return _features(8, n=50)

    first, hit = cached_real_features(PROTOCOL, "data1", compute)
    assert not hit and len(computed) == 1
    again, hit = cached_real_features(PROTOCOL, "data1", compute)
    assert hit and len(computed) == 1 and torch.equal(again, first)
    for protocol, data in (({**PROTOCOL, "resize_mode": "torchmetrics"}, "data1"), (PROTOCOL, "data2"),
                           ({**PROTOCOL, "weights_sha256": "ef" * 32}, "data1")):
        assert cached_real_features(protocol, data, compute)[1] is False
    assert len(computed) == 4 and len(list((tmp_path / "cache" / "real_features").glob("*.pt"))) == 4
    no_weights = {"extractor": "identity", "weights_sha256": None}
    assert cached_real_features(no_weights, "data1", compute)[1] is False  # nothing worth caching
    assert cached_real_features(no_weights, "data1", compute)[1] is False and len(computed) == 6
    path = next((tmp_path / "cache" / "real_features").glob("*.pt"))
    path.write_bytes(b"damaged")  # a damaged entry is recomputed, not trusted
    results = [cached_real_features(p, d, compute)[1] for p, d in (
        (PROTOCOL, "data1"), ({**PROTOCOL, "resize_mode": "torchmetrics"}, "data1"), (PROTOCOL, "data2"),
        ({**PROTOCOL, "weights_sha256": "ef" * 32}, "data1"))]
    assert results.count(False) == 1 and len(computed) == 7
