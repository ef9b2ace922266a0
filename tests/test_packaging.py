"""The configs live in the top-level conf/ and ship inside the package: a wheel built from the
source, installed into a folder of its own outside the repository, composes every experiment, finds
the shipped digit classifiers, and its installed commands (`gan-train`, ...) work beside the
`python -m` forms.

The wheel goes in with `pip install --target` and runs on this interpreter with only that folder on
PYTHONPATH: this works alike under the machine's Python and inside a virtual environment (a venv
made from a venv's interpreter would see the base Python's packages, not the outer venv's)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from helpers import EXPERIMENTS, ROOT, cli_env

COMPOSE_ALL = """
import sys
import gan_platform
from hydra import compose, initialize_config_module
from gan_platform.config import validate
assert gan_platform.__file__.startswith(sys.argv[1]), gan_platform.__file__  # the wheel, not the repository
from gan_platform.evaluation.digit_classifier import SHIPPED, load_digit_classifier
assert all(load_digit_classifier(r).sha256 == SHIPPED[r].sha256 for r in SHIPPED)  # the weights ship in the wheel
with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
    for name in sys.argv[2:]:
        validate(compose("config", overrides=["+experiment=" + name]))
print("composed", len(sys.argv) - 2)
"""


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_composes_every_experiment(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for part in ("pyproject.toml", "README.md", "gan_platform", "conf"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, source / part, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / part).is_dir() else {}))
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist")],
                           cwd=source, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("gan_platform-*.whl")
    names = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True).stdout
    assert "gan_platform/conf/config.yaml" in names and "gan_platform/conf/experiment/wgan.yaml" in names
    assert sum(f"gan_platform/conf/experiment/{e}.yaml" in names for e in EXPERIMENTS) == len(EXPERIMENTS)

    # the wheel alone in a folder; this interpreter supplies torch, hydra, ... (no download)
    target = tmp_path / "installed"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                              str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    python, bindir = sys.executable, target / "bin"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = cli_env({"PYTHONPATH": str(target)})  # the repository must not be importable: only the installed wheel
    done = subprocess.run([python, "-c", COMPOSE_ALL, str(target), *EXPERIMENTS], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"composed {len(EXPERIMENTS)}"

    for command in ([str(bindir / "gan-train"), "+experiment=wgan", "--cfg", "job"],
                    [python, "-m", "gan_platform", "experiment=wgan", "--cfg", "job"]):
        shown = subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert "weight_clip: 0.01" in shown.stdout and "name: wgan" in shown.stdout
    for script in ("gan-sweep", "gan-sample", "gan-translate", "gan-report", "gan-dashboard", "gan-dataset"):
        helped = subprocess.run([str(bindir / script), "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        assert helped.returncode == 0 and "usage:" in helped.stdout, (script, helped.stderr[-1000:])
    assert not list(elsewhere.iterdir()), "a --cfg job or --help run wrote files"
