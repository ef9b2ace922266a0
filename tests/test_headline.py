"""Where no FID applies (photos without Inception weights), the pixel-space metrics the run already
computes are its quality headline: the closing line, the report's lead card and the best checkpoint.
A training loss is never shown as a measure of the samples."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from helpers import TINY, run_cli

pytestmark = pytest.mark.slow


def test_photos_without_inception_weights_lead_with_pixel_coverage_and_keep_a_best_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    args = [o for o in TINY if o != "report=false"] + [
        "+experiment=wgan", "dataset=image_folder", f"dataset.root={photos}", "dataset.resolution=16",
        "model.generator.width=8", "model.discriminator.width=8", "trainer.steps=4", "trainer.d_steps=1",
        "trainer.log_every=2", "trainer.sample_every=0", "eval.every=2", "eval.num_samples=20"]
    proc = run_cli(args, cwd=tmp_path, env={"TORCH_HOME": str(tmp_path / "torch_home")}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(r"gan_platform: run finished: eval/pixel_coverage [0-9.e-]+ \(run dir: ", last), last
    assert "loss" not in last
    (run_dir,) = (tmp_path / "outputs" / "wgan").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best"]["step"] in (2, 4) and "eval/pixel_coverage" in summary["best"]
    assert (run_dir / "checkpoints" / "best").is_dir()
    cards = re.findall(r'<div class="card( headline)?" data-metric="[^"]*"><div class="name">([^<]+)</div>',
                       (run_dir / "report.html").read_text())
    assert cards and cards[0] == (" headline", "eval/pixel_coverage")
    assert not [name for _, name in cards if name.startswith("train/")]
