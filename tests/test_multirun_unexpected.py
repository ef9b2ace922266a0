"""A multirun job that fails with an unexpected error (not a UserError) is that job's failure: the
other jobs run, the error is in its summary.json, the traceback in its log file, and the multirun
ends with the per-job lines and exit 1 instead of Hydra's traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers import run_cli

# A path component longer than the file system allows (255 bytes): os.stat raises
# OSError(ENAMETOOLONG) inside the dataset code (data/images.py check_folder), which no check expects.
TOO_LONG = "x" * 300
SMALL = ["dataset=image_folder", "dataset.resolution=8", "model=dcgan", "model.generator.width=8",
         "model.discriminator.width=8", "trainer.steps=2", "trainer.batch_size=4", "trainer.grid_size=4",
         "trainer.progress=false", "trainer.sample_every=0", "eval.every=0", "eval.num_samples=8", "tracker=none",
         "report=false"]


@pytest.mark.slow
def test_an_unexpected_error_fails_its_job_only_and_the_multirun_ends_with_its_line(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(images / f"{i}.png")
    sweep_dir = tmp_path / "mr"
    proc = run_cli(["-m", *SMALL, f"dataset.root={TOO_LONG},{images}"], cwd=tmp_path,
                   env={"GAN_SWEEP_DIR": str(sweep_dir)}, timeout=300)
    assert proc.returncode == 1, proc.stderr
    failed, good = (json.loads((sweep_dir / job / "summary.json").read_text()) for job in ("0", "1"))
    assert failed["status"] == "failed" and failed["error"] == f"OSError: [Errno 36] File name too long: '{TOO_LONG}'"
    assert good["status"] == "finished" and good["step"] == 2  # the job after the failed one ran
    # no traceback on the console: the job's one line when it failed, and the per-job line at the end
    assert "Traceback" not in proc.stderr and "Error executing job" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1] == (f"gan_platform: job 0 (dataset.root={TOO_LONG}) failed: {failed['error']} "
                         f"(run dir: {sweep_dir / '0'})")
    log = sweep_dir / "0" / "gan_platform.log"
    assert f"gan_platform: error: {failed['error']} (run dir: {sweep_dir / '0'}; traceback in {log})" in lines
    # the traceback is in the failed job's own log file, down to the dataset code that raised
    text = log.read_text()
    assert "Job failed: OSError: [Errno 36]" in text and "Traceback (most recent call last)" in text
    assert "in check_folder" in text and "Traceback" not in (sweep_dir / "1" / "gan_platform.log").read_text()
