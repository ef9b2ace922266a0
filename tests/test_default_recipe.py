"""The bare `python -m gan_platform`: the default experiment, a recipe that covers the ring, while
the plain non-saturating GAN (the groups' own defaults) stays one override away and collapses."""

import json

from helpers import run_cli
from gan_platform.config.preflight import append_experiment

QUIET = ["trainer.progress=false", "tracker=none", "report=false", "trainer.sample_every=0", "eval.every=500"]


def test_no_experiment_named_runs_the_default_bundle_and_a_named_one_replaces_it():
    assert append_experiment(["seed=1"]) == ["+experiment=default", "seed=1"]
    assert append_experiment(["--cfg", "job"]) == ["--cfg", "job", "+experiment=default"]
    assert append_experiment(["-m", "seed=1,2", "--cfg", "job"]) == ["-m", "+experiment=default", "seed=1,2", "--cfg", "job"]
    assert append_experiment(["experiment=wgan", "seed=1"]) == ["+experiment=wgan", "seed=1"]
    assert append_experiment(["+experiment=none"]) == ["+experiment=none"]


def _final(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished", summary
    return summary["final"]["collapse/modes"], summary["final"]["collapse/high_quality"]


def test_the_bare_command_covers_the_ring_where_the_plain_gan_collapses(tmp_path):
    # 1,500 steps of the default's recipe (6,000 at full length), seed 0: 8 modes, 77% within 3 sigma
    # (benchmarks/README.md); the plain GAN: 0 modes. A change to the random streams can move this
    # seed's start (the recipe's weak spot, see there): then pick another seed, do not loosen it.
    # on the CPU on every machine: the numbers above are the CPU's (a GPU draws other random streams)
    steps = ["trainer.steps=1500", "seed=0"]
    cpu = {"CUDA_VISIBLE_DEVICES": ""}
    bare = run_cli(QUIET + steps, cwd=tmp_path, env={"GAN_RUN_DIR": str(tmp_path / "bare"), **cpu})
    assert bare.returncode == 0, bare.stderr
    config = (tmp_path / "bare" / ".hydra" / "config.yaml").read_text()
    assert "r1_gamma: 0.1" in config and "name: default" in config
    modes, quality = _final(tmp_path / "bare")
    assert modes >= 7 and quality >= 45, (modes, quality)

    plain = run_cli(QUIET + steps + ["+experiment=none"], cwd=tmp_path, env={"GAN_RUN_DIR": str(tmp_path / "plain"), **cpu})
    assert plain.returncode == 0, plain.stderr
    modes, quality = _final(tmp_path / "plain")
    assert modes <= 1 and quality < 10, (modes, quality)


def test_an_optimizer_named_with_the_default_replaces_its_adam_whole(tmp_path):
    # the default's Adam settings live in optimizer=adam_2d, so RMSprop gets no `betas` it cannot take
    import yaml

    shown = run_cli(["optimizer=rmsprop", "--cfg", "job"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    optimizer = yaml.safe_load(shown.stdout)["optimizer"]
    assert optimizer["_target_"] == "torch.optim.RMSprop" and optimizer["lr"] == 5e-5 and "betas" not in optimizer
    bare = yaml.safe_load(run_cli(["--cfg", "job"], cwd=tmp_path).stdout)["optimizer"]
    assert (bare["_target_"], bare["lr"], bare["betas"]) == ("torch.optim.Adam", 2e-3, [0.5, 0.9])
