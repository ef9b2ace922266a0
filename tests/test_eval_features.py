"""Feature extractors: Inception weights found, downloaded, checked or refused; digits; identity."""

import hashlib
from types import SimpleNamespace

import pytest
import torch

from helpers import run_cli
from helpers.evaluation import inception_shaped_weights
from gan_platform.errors import UserError
from gan_platform.evaluation.features import (INCEPTION_FILE, DigitFeatures, IdentityFeatures, InceptionFeatures,
                                              build_extractor, fid_applies, find_inception_weights, inception_cache_path,
                                              resize_clean, resolve_extractor_name)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def test_missing_weights_that_cannot_be_downloaded_name_the_file_and_the_place(hub, tmp_path):
    assert inception_cache_path() == hub / INCEPTION_FILE
    with pytest.raises(UserError) as e:
        find_inception_weights(url=(tmp_path / "nowhere.pth").as_uri())
    msg = str(e.value)
    assert INCEPTION_FILE in msg and str(hub / INCEPTION_FILE) in msg and msg.count(". ") == 0
    with pytest.raises(UserError, match="put torch-fidelity's"):
        find_inception_weights(path=str(tmp_path / "my.pth"), download=False)


@pytest.mark.parametrize("content,why", [({"fc.weight": torch.zeros(3, 3)}, "keys or shapes differ"),
                                         (b"not weights", "cannot be read")])
def test_a_file_that_is_not_the_inception_network_is_refused(tmp_path, content, why):
    path = tmp_path / INCEPTION_FILE
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(UserError, match=why):
        InceptionFeatures(find_inception_weights(path=str(path)))


def test_inception_weights_are_downloaded_checked_and_hashed(hub, tmp_path):
    source = inception_shaped_weights(tmp_path / "release.pth")
    found = find_inception_weights(url=source.as_uri())                # the real download path, from a file URL
    assert found == hub / INCEPTION_FILE and found.read_bytes() == source.read_bytes()
    extractor = build_extractor("inception", (1, 8, 8), {"inception_download": False})
    assert isinstance(extractor, InceptionFeatures)
    assert extractor.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert extractor.protocol()["release_hash_prefix_matches"] is False  # random weights, not the release
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    feats = extractor(x)
    assert feats.shape == (4, 2048) and torch.isfinite(feats).all()
    # grey in [-1, 1] is fed as uint8 RGB: the same image as three equal channels gives the same features
    assert torch.allclose(extractor(x.expand(-1, 3, -1, -1)), feats)


def test_a_run_with_missing_inception_weights_stops_before_training(tmp_path):
    proc = run_cli(["dataset=digits", "model=dcgan", "eval.features=inception", "trainer.steps=5",
                    f"eval.inception_url={(tmp_path / 'nowhere.pth').as_uri()}"], cwd=tmp_path, timeout=300,
                   env={"TORCH_HOME": str(tmp_path / "th")})
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("gan_platform: error: The FID Inception weights are missing") and INCEPTION_FILE in line
    assert "Traceback" not in proc.stderr
    run_dir = next((tmp_path / "outputs" / "default").iterdir())
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()


def test_digit_features_per_channel_and_predictions():
    from gan_platform.data.digits import load_digit_images

    x, y = load_digit_images(16)
    x = x[:300].float() / 127.5 - 1
    one = DigitFeatures(1, 16)
    assert one.num_features == 64 and len(one.sha256) == 64 and one.classifier.test_accuracy >= 0.95
    feats, digits = one.features_and_digits(x)
    assert feats.shape == (300, 64) and (digits[:, 0] == y[:300]).float().mean() > 0.95
    three = DigitFeatures(3, 16)
    stacked = torch.cat([x, x.flip(0), x], dim=1)
    f3, d3 = three.features_and_digits(stacked)
    assert f3.shape == (300, 192) and torch.equal(f3[:, :64], feats) and torch.equal(d3[:, 1], digits.flip(0)[:, 0])


@pytest.mark.parametrize("resolution", [16, 32])
def test_the_shipped_digit_classifiers_are_the_pinned_files_and_score_their_pinned_accuracy(resolution):
    """The classifiers ship as files whose SHA-256 is pinned (the same features on every machine);
    each reads its held-out third of the digits (never trained on) as its pin says, to rounding."""
    from gan_platform.data.digits import load_digit_images
    from gan_platform.evaluation.digit_classifier import SHIPPED, _split, load_digit_classifier

    clf = load_digit_classifier(resolution)
    assert clf.sha256 == SHIPPED[resolution].sha256 and clf.resolution == resolution
    x, y = load_digit_images(resolution)
    _, held_out = _split(len(x))
    accuracy = (clf.predict(x[held_out].float() / 127.5 - 1) == y[held_out]).float().mean().item()
    assert abs(accuracy - SHIPPED[resolution].test_accuracy) <= 2 / len(held_out) and accuracy > 0.97


def test_a_classifier_file_that_is_not_the_pinned_one_is_refused(monkeypatch):
    from gan_platform.evaluation import digit_classifier

    monkeypatch.setitem(digit_classifier.SHIPPED, 16, digit_classifier.Shipped("0" * 64, 0.5))
    with pytest.raises(UserError, match="has SHA-256 e5e2379e8b90..., not the pinned 000000000000...") as info:
        digit_classifier.load_digit_classifier(16)
    assert str(info.value).count(". ") == 0
    with pytest.raises(UserError, match="No digit classifier ships for 24 x 24 images"):
        digit_classifier.load_digit_classifier(24)


@pytest.mark.parametrize("side, used", [(8, 16), (16, 16), (32, 32), (64, 32), (256, 32)])
def test_digit_features_of_any_side_use_the_nearest_shipped_classifier(side, used):
    from gan_platform.evaluation.features import digit_features

    assert digit_features((1, side, side), {}).classifier.resolution == used


def test_auto_choice_by_data_kind():
    from gan_platform.data.digit_styles import digit_styles
    from gan_platform.data.digits import digits
    from gan_platform.data.mixtures import ring8

    assert resolve_extractor_name("auto", ring8()) == "identity"
    assert resolve_extractor_name("auto", digits(8)) == "digits"
    assert resolve_extractor_name("digits", digits(8)) == "digits"
    assert resolve_extractor_name("auto", digit_styles(8)) == "digits"  # CycleGAN's pair: digits seen through views
    ident = build_extractor("identity", (2,), {})
    assert isinstance(ident, IdentityFeatures) and torch.equal(ident(torch.eye(2)), torch.eye(2))
    with pytest.raises(UserError, match="eval.features must be one of"):
        resolve_extractor_name("vgg", ring8())


def test_auto_picks_inception_for_photos_only_where_its_weights_are(hub, tmp_path):
    photos = SimpleNamespace(kind="images", name="horse2zebra")
    # nothing on disk: the pixels, with a warning, and no FID (a digit classifier says nothing of photos)
    assert resolve_extractor_name("auto", photos) == "identity" and not fid_applies("identity", photos)
    weights = tmp_path / INCEPTION_FILE
    weights.write_bytes(b"checked when loaded")
    assert resolve_extractor_name("auto", photos, str(weights)) == "inception"


def test_a_fid_applies_only_where_the_features_fit_the_data():
    from gan_platform.data.digit_styles import digit_styles
    from gan_platform.data.digits import digits
    from gan_platform.data.mixtures import ring8

    photos = SimpleNamespace(kind="images", name="horse2zebra")
    fits = {(name, d.name): fid_applies(name, d) for name in ("inception", "digits", "identity")
            for d in (ring8(), digits(8), digit_styles(8), photos)}
    assert fits == {("inception", "ring8"): False, ("inception", "digits"): True, ("inception", "digit_styles"): True,
                    ("inception", "horse2zebra"): True, ("digits", "ring8"): False, ("digits", "digits"): True,
                    ("digits", "digit_styles"): True, ("digits", "horse2zebra"): False, ("identity", "ring8"): True,
                    ("identity", "digits"): False, ("identity", "digit_styles"): False, ("identity", "horse2zebra"): False}
    assert fid_applies("mine", photos, {"extractors": {"mine": {"_target_": "x.y"}}})  # one's own: one's call


def _checkerboard(side):
    i = torch.arange(side)
    return ((i[:, None] + i[None, :]) % 2 * 255).to(torch.uint8).expand(1, 3, side, side).contiguous()


@pytest.mark.slow
def test_the_two_resizes_run_and_differ_on_an_image_that_aliases(tmp_path):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    checker = _checkerboard(400)  # one-pixel squares, shrunk to 299: a moire pattern unless filtered first
    clean = resize_clean(checker, 299).float()
    tf1 = interpolate_bilinear_2d_like_tensorflow1x(checker.float(), size=(299, 299), align_corners=False)
    assert clean.shape == tf1.shape == (1, 3, 299, 299)
    assert clean.mean() == pytest.approx(127.5, abs=1) and tf1.mean() == pytest.approx(127.5, abs=1)
    assert clean.std() < 10 and tf1.std() > 35  # antialiased: near-flat grey; TF-1 bilinear: aliasing stripes
    ramp = (torch.arange(400)[None, :].float() / 399 * 255).round().to(torch.uint8).expand(1, 3, 400, 400).contiguous()
    smooth = (resize_clean(ramp, 299).float() - interpolate_bilinear_2d_like_tensorflow1x(
        ramp.float(), size=(299, 299), align_corners=False)).abs().mean()
    assert smooth < 1  # on a smooth image the two agree
    weights = inception_shaped_weights(tmp_path / INCEPTION_FILE)
    x = torch.cat([checker, ramp]).float() / 127.5 - 1
    by_mode = {mode: build_extractor("inception", (3, 400, 400), {"inception_weights": str(weights), "resize": mode})
               for mode in ("torchmetrics", "clean")}
    feats = {mode: e(x) for mode, e in by_mode.items()}
    assert by_mode["clean"].protocol()["resize_mode"] == "clean" and "bicubic" in by_mode["clean"].protocol()["resize"]
    gap = (feats["clean"] - feats["torchmetrics"]).norm(dim=1) / feats["torchmetrics"].norm(dim=1)
    assert gap[0] > 5 * gap[1]  # the aliasing image moves its features far more than the smooth one
    with pytest.raises(UserError, match="eval.resize must be one of torchmetrics, clean"):
        build_extractor("inception", (3, 8, 8), {"inception_weights": str(weights), "resize": "nearest"})


@pytest.mark.slow
def test_photos_without_inception_weights_get_no_fid_but_the_metrics_that_hold(hub, tmp_path, caplog):
    """eval.features=auto on photos with no Inception file: no eval/fid (nor KID, nor a best checkpoint
    by it), precision/recall on pixels under their own names, and one sentence naming the file."""
    import logging

    import numpy as np
    from PIL import Image

    from helpers import TINY, train

    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{i}.png")
    with caplog.at_level(logging.WARNING):
        summary = train(tmp_path / "run", [*TINY, "dataset=image_folder", f"dataset.root={tmp_path / 'photos'}",
                                           "dataset.resolution=16", "model=dcgan", "model.generator.width=8",
                                           "model.discriminator.width=8", "trainer.steps=2", "trainer.sample_every=0",
                                           "eval.num_samples=20"])
    final, protocol = summary["final"], summary["protocol"]
    assert summary["status"] == "finished"
    assert not [k for k in final if "fid" in k or "kid" in k or k in ("eval/precision", "eval/is")], final
    assert 0 <= final["eval/pixel_precision"] <= 1 and 0 <= final["eval/pixel_coverage"] <= 1
    assert protocol["extractor"] == "identity" and INCEPTION_FILE in protocol["fid"] and "eval.inception_weights" in protocol["fid"]
    assert caplog.text.count(f"Inception weights file {INCEPTION_FILE} is not on disk") == 1


@pytest.mark.parametrize("override, phrase", [("eval.resize=nearest", "eval.resize must be one of torchmetrics, clean, got 'nearest'"),
                                              ("eval.is_splits=0", "eval.is_splits must be a whole number of at least 1")])
def test_resize_and_is_splits_are_checked_before_any_work(override, phrase):
    from helpers import compose
    from gan_platform.config import validate

    with pytest.raises(UserError, match=phrase):
        validate(compose([override]))
