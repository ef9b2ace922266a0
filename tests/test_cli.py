"""The command line as a user runs it: `python -m gan_platform ...` in a fresh directory."""

import json

import pytest

from helpers import run_cli

BAD_INPUTS = [
    (["+experiment=wgann"], "Unknown experiment 'wgann': choose one of"),
    (["loss=vanilla"], "Unknown loss 'vanilla': choose one of hinge, least_squares, minimax"),
    (["dataset=mnistt"], "Unknown dataset 'mnistt'"),
    (["optimizer.lrr=1e-4"], "Unknown config key 'optimizer.lrr'"),
    (["+optimizer.lrr=1e-4"], "Unknown key 'optimizer.lrr'"),
    (["trainer.stepz=10"], "Unknown config key 'trainer.stepz'"),
    (["trainer.steps=ten"], "trainer.steps must be of type integer, got 'ten'"),
    (["model.generator.hidden=wide"], "model.generator.hidden must be a number, got 'wide'"),
    (["optimizer.lr=-0.001"], "optimizer.lr must be positive, got -0.001"),
    (["optimizer.lr=0"], "optimizer.lr must be positive"),
    (["trainer.steps=0"], "trainer.steps must be positive"),
    (["trainer.batch_size=-4"], "trainer.batch_size must be positive"),
    (["trainer.d_steps=0"], "trainer.d_steps must be positive"),
    (["loss.weight_clip=-1"], "loss.weight_clip must be zero or more"),
    (["+experiment=wgan", "loss.weight_clip=0"], "needs a Lipschitz critic"),
    (["trainer.precision=fp8"], "trainer.precision must be one of no, bf16, fp16"),
    (["+experiment=wgan", "dataset=ring8"], "use model=mlp"),
    (["optimizer.lr=nan"], "optimizer.lr must be a finite number, got nan"),
    (["optimizer.betas=[1.5,0.9]"], "The optimizer rejects its settings (Invalid beta parameter at index 0: 1.5)"),
    (["model.z_dim=0"], "model.z_dim must be positive, got 0"),
    (["task.conditional=true", "dataset.modes=1"], "dataset.modes must be at least 2, got 1"),
    (["model.discriminator.pack=3", "trainer.batch_size=16"], "trainer.batch_size=16 is not a multiple of model.discriminator.pack=3"),
    (["seed=-1"], "seed must be in [0, 2**32), got -1"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, args, message):
    proc = run_cli(args + ["trainer.progress=false"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr  # one sentence, no traceback
    assert lines[0].startswith("gan_platform: error: ") and message in lines[0]
    assert "Traceback" not in proc.stderr
    # nothing that looks like a good run is left behind
    for summary in tmp_path.rglob("summary.json"):
        assert json.loads(summary.read_text())["status"] == "failed"
    assert not list(tmp_path.rglob("checkpoints"))


def test_a_user_run_writes_the_run_dir_under_outputs(tmp_path):
    proc = run_cli(["dataset=ring8", "trainer.steps=10", "trainer.log_every=5", "trainer.progress=false",
                    "trainer.sample_every=10"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = list((tmp_path / "outputs" / "default").iterdir())
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    assert (run_dir / "samples" / "step_000010.png").exists()
    assert (run_dir / "checkpoints" / "last" / "meta.json").exists()
    # resume=auto finds this run again and continues it in the same dir
    proc = run_cli(["dataset=ring8", "trainer.steps=20", "trainer.log_every=5", "trainer.progress=false",
                    "trainer.resume=auto"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "outputs" / "default").iterdir())) == 1
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "train/d_loss" in r]
    assert steps == [5, 10, 15, 20]


def test_resume_from_a_path_that_is_not_a_run(tmp_path):
    (tmp_path / "junk").mkdir()
    proc = run_cli(["dataset=ring8", "trainer.resume=junk"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "is not a gan_platform checkpoint" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("where,args,message", ids=["GAN_RUN_DIR a file", "GAN_RUN_DIR under a file", "hydra.run.dir a file"], argvalues=[
    ("GAN_RUN_DIR", [], "GAN_RUN_DIR='{file}' is an existing file, not a directory: "
                        "point GAN_RUN_DIR at a new or existing directory, or move the file away."),
    ("GAN_RUN_DIR", ["sub"], "GAN_RUN_DIR='{file}/sub' lies under '{file}', an existing file, not a directory: "
                             "point GAN_RUN_DIR at a new or existing directory, or move the file away."),
    ("hydra.run.dir", [], "hydra.run.dir='{file}' is an existing file, not a directory: "
                          "point hydra.run.dir at a new or existing directory, or move the file away."),
])
def test_a_run_dir_that_is_a_file_is_one_sentence_and_exit_2(tmp_path, where, args, message):
    file = tmp_path / "not_a_dir.txt"
    file.write_text("keep me\n")
    target = "/".join([str(file), *args])
    env = {"GAN_RUN_DIR": target} if where == "GAN_RUN_DIR" else None
    extra = [f"hydra.run.dir={target}"] if where == "hydra.run.dir" else []
    proc = run_cli(["dataset=ring8", "trainer.steps=5", "trainer.progress=false", *extra], cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0] == "gan_platform: error: " + message.format(file=file)
    assert file.read_text() == "keep me\n" and not (tmp_path / "outputs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args,tracked,shown", ids=["ring8 with W&B", "conditional digits, no report"], argvalues=[
    (["dataset=ring8"], True, ["eval/fid", "collapse/modes"]),
    (["+experiment=cgan", "tracker=none", "report=false", "trainer.batch_size=16", "eval.num_samples=200",
      "eval.per_class_fid=false"], False, ["eval/fid", "eval/class_accuracy"]),
])
def test_a_finished_run_ends_with_one_closing_line(tmp_path, args, tracked, shown):
    """The platform's own last line says how the run ended, its headline metrics, its run dir, its
    report and, with W&B, where the record went and the one command that uploads it; W&B's own
    console lines (whose wording is W&B's) are off, as a user's shell leaves WANDB_SILENT unset."""
    proc = run_cli([*args, "trainer.steps=10", "trainer.log_every=5", "trainer.progress=false", "eval.every=10"],
                   cwd=tmp_path, env={"WANDB_SILENT": None, "WANDB_CONFIG_DIR": str(tmp_path / "wandb_home")}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [p.parent for p in tmp_path.glob("outputs/*/*/summary.json")]
    summary = json.loads((run_dir / "summary.json").read_text())
    final = summary["final"]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert not [line for line in lines if line.startswith("wandb:")], proc.stderr
    metrics = ", ".join(f"{k} {final[k]:.4g}" for k in shown)
    report = f"{run_dir / 'report.html'}" if tracked else "none, report=false"
    wandb = f"; W&B: offline in {run_dir / 'wandb'}; upload it with: wandb sync {run_dir / 'wandb'}" if tracked else ""
    assert lines[-1] == f"gan_platform: run finished: {metrics} (run dir: {run_dir}; report: {report}{wandb})"
    assert (run_dir / "report.html").exists() == tracked
    assert [line for line in lines if line.startswith("gan_platform:")] == [lines[-1]]
