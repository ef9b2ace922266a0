"""The in-process `train` helper writes `.hydra/config.yaml` as a command-line (Hydra) run does, so
tests of `gan_platform.sample` and `gan_platform.translate` can use its run dirs as they are."""

from __future__ import annotations

import pytest
import yaml

from helpers import TINY, run_cli, train
from gan_platform.errors import ConfigError

OVERRIDES = [*TINY, "+experiment=toy2d", "loss=hinge", "optimizer.lr=0.0005", "model.generator.hidden=32",
             "model.discriminator.hidden=32", "trainer.steps=2", "trainer.log_every=1", "trainer.sample_every=0",
             "eval.every=0", "eval.num_samples=100"]


@pytest.mark.slow
def test_train_writes_the_config_file_a_cli_run_writes(tmp_path):
    proc = run_cli(OVERRIDES, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (cli_file,) = (tmp_path / "outputs").glob("*/*/.hydra/config.yaml")
    summary = train(tmp_path / "inproc", OVERRIDES)
    ours = (tmp_path / "inproc" / ".hydra" / "config.yaml").read_text()
    assert ours == cli_file.read_text()  # byte for byte: the same composition, unresolved, before the run
    config = yaml.safe_load(ours)
    assert (config["loss"]["name"], config["optimizer"]["lr"], config["trainer"]["steps"]) == ("hinge", 0.0005, 2)
    assert config["eval"]["best_metric"] == "auto"  # written before the run fills in its `auto` choices
    assert config["tracker"]["name"] == "none" and summary["status"] == "finished"


def test_a_config_the_cli_refuses_leaves_no_config_file(tmp_path):
    with pytest.raises(ConfigError, match="trainer.steps must be positive"):
        train(tmp_path / "run", [*TINY, "trainer.steps=0"])
    assert not (tmp_path / "run").exists()  # checked first, as the command line checks before Hydra writes
