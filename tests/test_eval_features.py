"""Feature extractors: Inception weights found, downloaded, checked or refused; digits; identity."""

import hashlib
from types import SimpleNamespace

import pytest
import torch

from conftest import run_cli
from gan_platform.errors import UserError
from gan_platform.evaluation.features import (INCEPTION_FILE, DigitFeatures, IdentityFeatures, InceptionFeatures,
                                              build_extractor, find_inception_weights, inception_cache_path,
                                              resolve_extractor_name)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def _inception_shaped_weights(path):
    """A file with the keys and shapes of torch-fidelity's Inception (random values, not the real file)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Blank(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # build the architecture without any weights file
            return None

    empty = path.parent / "empty.pt"
    torch.save({}, empty)
    torch.manual_seed(0)
    torch.save(Blank("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)).state_dict(), path)
    return path


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
    source = _inception_shaped_weights(tmp_path / "release.pth")
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
    assert resolve_extractor_name("auto", photos) == "digits"  # nothing on disk: digits, with a warning
    weights = tmp_path / INCEPTION_FILE
    weights.write_bytes(b"checked when loaded")
    assert resolve_extractor_name("auto", photos, str(weights)) == "inception"
