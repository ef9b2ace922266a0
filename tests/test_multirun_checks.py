"""What the multirun pre-flight checks, in this process: the jobs Hydra's basic sweeper will run."""

import pytest

from gan_platform.errors import UserError
from gan_platform.sweep.multirun import is_checkable_multirun, preflight_sweep, sweep_jobs
from helpers import hydra_compose


def test_the_jobs_are_the_cartesian_product_in_hydras_order():
    jobs = sweep_jobs(["-m", "hydra/launcher=basic", "loss=minimax,hinge", "seed=range(0,3)", "report=false"],
                      hydra_compose)
    assert [j[1:3] for j in jobs] == [[f"loss={loss}", f"seed={seed}"] for loss in ("minimax", "hinge") for seed in range(3)]
    assert all(j[0] == "hydra/launcher=basic" and j[3] == "report=False" for j in jobs)


def test_sweeper_params_of_an_experiment_join_the_sweep(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "seeds.yaml").write_text("# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 0,1,2\n")
    jobs = sweep_jobs(["-m", f"hydra.searchpath=[file://{tmp_path}]", "+experiment=seeds", "loss=hinge,minimax"], hydra_compose)
    assert [(j[1], j[3]) for j in jobs] == [(f"seed={s}", f"loss={loss}") for s in range(3) for loss in ("hinge", "minimax")]


def test_preflight_names_the_first_bad_job_and_counts_the_jobs():
    assert preflight_sweep(["-m", "loss=hinge,minimax", "seed=0,1", "tracker=none"]) == 4
    with pytest.raises(UserError, match=r"^trainer.steps must be positive, got 0: .* \(in the sweep job loss=hinge trainer.steps=0\)\.$"):
        preflight_sweep(["-m", "loss=hinge,minimax", "trainer.steps=5,0", "tracker=none"])
    with pytest.raises(UserError, match=r"^No checkpoint at 'nowhere': the path does not exist"):
        preflight_sweep(["-m", "seed=0,1", "trainer.resume=nowhere", "tracker=none"])


@pytest.mark.parametrize("argv,checked", [
    (["-m", "loss=hinge,minimax"], True), (["--multirun", "seed=0,1"], True),
    (["loss=hinge"], False), (["-m", "--cfg", "job"], False), (["-m", "-cd", "elsewhere", "seed=0,1"], False),
])
def test_which_command_lines_are_checked(argv, checked):
    assert is_checkable_multirun(argv) is checked


@pytest.mark.parametrize("launcher", ["submitit_local", "submitit_slurm"])
def test_a_launcher_whose_plugin_is_not_installed_says_which_extra_brings_it(tmp_path, launcher):
    """Without hydra-submitit-launcher, Hydra's own words were "choose one of basic". The plugin is
    hidden from a real interpreter by a `hydra_plugins` package first on its path (Hydra finds its
    plugins in that namespace), so Hydra sees exactly what an install without the extra sees."""
    import subprocess
    import sys

    from helpers import cli_env

    hidden = tmp_path / "hidden" / "hydra_plugins"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("")
    env = cli_env()
    env["PYTHONPATH"] = str(tmp_path / "hidden") + ":" + env["PYTHONPATH"]
    done = subprocess.run([sys.executable, "-m", "gan_platform", "-m", f"hydra/launcher={launcher}", "trainer.steps=1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"gan_platform: error: hydra/launcher={launcher} comes with the hydra-submitit-launcher "
                                   "plugin, which is not installed: install the slurm extra (bash scripts/install slurm, "
                                   "or pip install 'gan_platform[slurm]') and run again.")
    assert not (tmp_path / "multirun").exists()
