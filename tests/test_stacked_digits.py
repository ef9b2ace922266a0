"""stacked_digits: three digits as three channels, labels 100a + 10b + c, shards per process."""

import pytest
import torch

from conftest import compose, run_cli
from gan_platform.config import validate
from gan_platform.data.stacked_digits import stacked_digits
from gan_platform.errors import ConfigError
from gan_platform.evaluation.collapse import stacked_modes
from gan_platform.evaluation.features import DigitFeatures


def test_channels_hold_the_digits_the_label_names():
    data = stacked_digits(16, eval_size=400)
    x, y = data.all()
    assert x.shape == (400, 3, 16, 16) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert 0 <= int(y.min()) and int(y.max()) < 1000 and data.num_classes == 1000
    digits = DigitFeatures(3, 16).predict(x)
    assert (stacked_modes(digits) == y).float().mean() > 0.9     # the classifier reads each channel's digit
    batch, labels = data.sample(500, torch.Generator().manual_seed(0))
    assert batch.shape == (500, 3, 16, 16) and labels.unique().numel() > 350   # fresh triples, ~1000 modes


def test_processes_compose_triples_from_disjoint_shards_of_the_digits():
    a, b = stacked_digits(16, 10).shard(0, 2), stacked_digits(16, 10).shard(1, 2)
    assert set(a._pool_index.tolist()).isdisjoint(b._pool_index.tolist())
    assert len(a._pool_index) + len(b._pool_index) == 1797


def test_the_config_group_builds_it_and_bad_eval_settings_are_one_sentence(tmp_path):
    cfg = compose(["dataset=stacked_digits", "model=dcgan"])
    assert cfg.dataset._target_.endswith("stacked_digits") and cfg.dataset.eval_size == 10000
    for override, phrase in (("eval.features=vgg", "eval.features must be one of auto, inception, digits, identity"),
                             ("eval.best_mode=up", "eval.best_mode must be min, max or auto"),
                             ("eval.num_samples=1", "eval.num_samples must be a whole number of at least 2")):
        with pytest.raises(ConfigError, match=phrase):
            validate(compose([override]))
    proc = run_cli(["eval.prdc_k=0"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "eval.prdc_k must be a whole number of at least 1" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "outputs").exists()
