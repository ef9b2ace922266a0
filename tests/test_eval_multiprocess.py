"""Two real CPU processes (gloo): each draws its share of the evaluation samples, and the metrics
are computed from the gathered set of both."""

import json
import os
import subprocess
import sys

from helpers import cli_env


def test_metrics_use_the_samples_of_both_processes(tmp_path):
    run_dir = tmp_path / "run"
    env = cli_env({"GAN_RUN_DIR": str(run_dir), "ACCELERATE_USE_CPU": "1", "CUDA_VISIBLE_DEVICES": ""})
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "gan_platform",
           "dataset=ring8", "model=mlp", "model.generator.hidden=16", "model.discriminator.hidden=16",
           "trainer.steps=4", "trainer.batch_size=8", "trainer.progress=false", "trainer.sample_every=0",
           "eval.every=2", "eval.num_samples=301"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    p = summary["protocol"]
    assert summary["num_processes"] == 2 and p["num_processes"] == 2
    # 301 samples: 151 from each process, gathered and cut to the configured total (one process alone has 151)
    assert p["num_fake"] == 301 and p["num_fake_used"] == 301 and p["kid_subset_size"] == 301
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if "eval/fid" in line]
    assert [r["step"] for r in evals] == [2, 4] and all(0 <= r["collapse/modes"] <= 8 for r in evals)
    assert not os.path.exists(tmp_path / "outputs")
