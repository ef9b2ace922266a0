"""W&B tracking from real short runs, checked in the offline run files (no server, no network)."""

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import TINY, compose, run_cli, train
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.runs.rundir import read_metrics
from gan_platform.tracking.wandb import as_uint8
from helpers.wandb_offline import offline_runs, read_run

WANDB = [o for o in TINY if not o.startswith("tracker=")] + [
    "tracker=wandb", "dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32"]


@pytest.fixture
def wandb_home(tmp_path, monkeypatch):
    """W&B's own settings and caches in a scratch folder, and a working dir to check stays clean."""
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_offline_run_records_config_losses_images_and_summary(tmp_path, wandb_home):
    run_dir = tmp_path / "run"
    summary = train(run_dir, WANDB + ["trainer.steps=20", "trainer.log_every=5", "trainer.sample_every=10",
                                      "eval.every=0", "tracker.tags=[ring,smoke]"])
    assert summary["status"] == "finished"
    (wandb_file,) = offline_runs(run_dir)
    assert not list(wandb_home.iterdir())  # nothing in the working dir
    assert not (run_dir / "report.html").exists()  # report=false
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    run_id = state["trainer"]["tracker"]["run_id"]
    assert wandb_file.name == f"run-{run_id}.wandb" and len(run_id) == 8
    rec = read_run(wandb_file)
    assert rec["run"].run_id == run_id and rec["run"].run_group == "default"  # group = experiment name
    assert list(rec["run"].tags) == ["ring", "smoke"] and rec["run"].display_name == "default/run"
    # the resolved config
    assert rec["config"]["trainer"]["steps"] == 20 and rec["config"]["dataset"]["modes"] == 8
    assert rec["config"]["tracker"]["group"] == "default"
    # losses at the log cadence, the same numbers as metrics.jsonl
    local = {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl") if "train/d_loss" in r}
    rows = {row["_step"]: row for row in rec["history"]}
    assert sorted(s for s, row in rows.items() if "train/d_loss" in row) == [5, 10, 15, 20]
    for step in (5, 10, 15, 20):
        assert rows[step]["train/d_loss"] == local[step]["train/d_loss"]
        assert rows[step]["train/g_loss"] == local[step]["train/g_loss"]
    # the 2-D scatter as an image at each sample step, the size of the PNG in the run dir
    from PIL import Image

    width, height = Image.open(run_dir / "samples" / "step_000010.png").size
    for step in (0, 10, 20):
        image = rows[step]["samples"] if "samples" in rows[step] else {k.split("/", 1)[1]: v for k, v in rows[step].items() if k.startswith("samples/")}
        assert image["_type"] == "image-file" and (image["width"], image["height"]) == (width, height)
        assert (wandb_file.parent / "files" / image["path"]).is_file()
    # summary.json's values in the W&B summary; best-of metrics declared
    assert rec["summary"]["status"] == "finished" and rec["summary"]["step"] == 20
    assert rec["summary"]["final/train/d_loss"] == local[20]["train/d_loss"]
    declared = {m.name: m.summary for m in rec["metrics"] if m.name}
    assert declared["eval/fid"].min and declared["eval/kid"].min and declared["collapse/modes"].max
    assert rec["exit_code"] == 0
    # evaluation metrics on their own x axis, eval/step
    evals = [row for row in rec["history"] if "eval/fid" in row]
    assert [row["_step"] for row in evals] == [20] and evals[0]["eval/step"] == 20
    assert all("eval/step" not in row for row in rec["history"] if "eval/fid" not in row)
    steps = {(m.name or m.glob_name): m.step_metric for m in rec["metrics"]}
    assert steps["eval/*"] == steps["collapse/*"] == steps["eval/fid"] == steps["collapse/modes"] == "eval/step"
    # beside each picture, the 2-D samples as a scatter: its table holds the points of the run dir's .pt
    import torch

    for step in (0, 10, 20):
        table = rows[step]["samples_scatter_table/path"]
        data = json.loads((wandb_file.parent / "files" / table).read_text())
        points = torch.load(run_dir / "samples" / f"step_{step:06d}.pt")["samples"]
        assert data["columns"] == ["x", "y"] and torch.tensor(data["data"]).allclose(points.float())
    chart = rec["config"]["_wandb/visualize/samples_scatter"]["panel_config"]  # wandb.plot.scatter's chart
    assert chart["panelDefId"] == "wandb/scatter/v0" and chart["fieldSettings"] == {"x": "x", "y": "y"}


def test_class_rows_reach_wandb_as_a_table_of_images(tmp_path, wandb_home):
    """A conditional grid's raw samples (the run dir's .pt): one table row per class, that class's row as an image."""
    import torch
    from accelerate import Accelerator
    from PIL import Image

    from gan_platform.runs.rundir import RunDir
    from gan_platform.tracking.pictures import image_grid, upscale
    from gan_platform.tracking.wandb import WandbTracker

    run_dir = RunDir(tmp_path / "run")
    labels = torch.arange(3).repeat_interleave(4)
    samples = (labels.float()[:, None, None, None] / 2 - 0.5).expand(12, 1, 8, 8).contiguous()  # class c: one grey
    run_dir.samples_dir.mkdir(parents=True)
    torch.save({"samples": samples, "labels": labels}, run_dir.sample_path(500, ".pt"))
    tracker = WandbTracker(Accelerator(log_with="wandb"), project="gan_platform", group="g", mode="offline")
    tracker.start({"name": "probe"}, str(run_dir.root))
    tracker.log_images({"samples": upscale(image_grid(samples, rows=3))}, 500)
    tracker.finish({"status": "finished"})
    rec = read_run(offline_runs(run_dir.root)[0])
    (row,) = [r for r in rec["history"] if r["_step"] == 500]
    assert row["samples_by_class/_type"] == "table-file" and row["samples_by_class/nrows"] == 3
    (artifact,) = [a for a in rec["artifacts"] if a["name"].endswith("samples_by_class")]
    table = json.loads(Path(artifact["files"]["samples_by_class.table.json"]).read_text())
    assert table["columns"] == ["step", "class", "samples"] and [r[:2] for r in table["data"]] == [[500, 0], [500, 1], [500, 2]]
    for step, cls, image in table["data"]:
        picture = np.asarray(Image.open(artifact["files"][image["path"]]).convert("L"))
        expected = upscale(image_grid(samples[labels == cls], rows=1), 64)
        assert picture.shape == expected.shape[:2] and picture.shape[1] > 3 * picture.shape[0]  # one row of four
        assert picture[picture.shape[0] // 2, 20] == round(255 * (cls + 1) / 4)  # class c: grey (c/2 - 0.5 + 1) / 2


def test_unreadable_raw_samples_cost_only_their_views(tmp_path, wandb_home, caplog):
    """A .pt that cannot be read: one warning; the picture and later metrics still reach W&B."""
    from accelerate import Accelerator

    from gan_platform.runs.rundir import RunDir
    from gan_platform.tracking.wandb import WandbTracker

    run_dir = RunDir(tmp_path / "run")
    run_dir.samples_dir.mkdir(parents=True)
    run_dir.sample_path(7, ".pt").write_bytes(b"not a torch file")
    tracker = WandbTracker(Accelerator(log_with="wandb"), project="gan_platform", group="g", mode="offline")
    tracker.start({"name": "probe"}, str(run_dir.root))
    with caplog.at_level("WARNING", logger="gan_platform.tracking.wandb"):
        tracker.log_images({"samples": np.zeros((8, 8, 3), np.uint8)}, 7)
    tracker.log({"eval/fid": 3.0}, 8)
    tracker.finish({"status": "finished"})
    # the platform's own records only: W&B's loggers propagate or not depending on what ran before
    ours = [r.getMessage()[:48] for r in caplog.records if r.name.startswith("gan_platform")]
    assert ours == ["W&B: no class table or scatter of the samples at"]
    rows = {r["_step"]: r for r in read_run(offline_runs(run_dir.root)[0])["history"]}
    image = {k.split("/", 1)[1]: v for k, v in rows[7].items() if k.startswith("samples/")} or rows[7]["samples"]
    assert image["_type"] == "image-file"
    assert rows[8]["eval/fid"] == 3.0 and rows[8]["eval/step"] == 8


def test_resume_continues_the_same_wandb_run(tmp_path, wandb_home):
    run_dir = tmp_path / "run"
    common = WANDB + ["trainer.log_every=3", "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.every=0"]
    train(run_dir, common + ["trainer.steps=6"])
    train(run_dir, common + ["trainer.steps=12", "trainer.resume=auto"])
    first, second = offline_runs(run_dir)
    a, b = read_run(first), read_run(second)
    assert a["run"].run_id == b["run"].run_id and first.name == second.name
    assert [r["_step"] for r in a["history"] if "train/d_loss" in r] == [3, 6]
    assert [r["_step"] for r in b["history"] if "train/d_loss" in r] == [9, 12]
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    assert state["trainer"]["tracker"]["run_id"] == a["run"].run_id


def test_summary_keeps_the_best_fid_and_modes(tmp_path, wandb_home):
    """define_metric: the W&B summary holds min FID / max modes beside the last value."""
    from accelerate import Accelerator

    from gan_platform.tracking.wandb import WandbTracker

    tracker = WandbTracker(Accelerator(log_with="wandb"), project="gan_platform", group="g", mode="offline")
    tracker.start({"name": "probe"}, str(tmp_path))
    for step, fid, modes in [(10, 30.0, 5), (20, 12.5, 8), (30, 20.0, 6)]:
        tracker.log({"eval/fid": fid, "collapse/modes": modes}, step)
    tracker.log_images({"grid": np.full((8, 8, 3), 0.5)}, 30, {"grid": "float picture"})
    tracker.finish({"status": "diverged", "best": {"step": 20, "eval/fid": 12.5, "metrics": {}}})
    rec = read_run(offline_runs(tmp_path)[0])
    assert rec["summary"]["eval/fid"] == {"min": 12.5, "last": 20.0}
    assert rec["summary"]["collapse/modes"] == {"max": 8, "last": 6}
    assert rec["summary"]["best/eval/fid"] == 12.5 and rec["summary"]["best/step"] == 20
    assert rec["exit_code"] == 1  # a diverged run shows as failed in W&B
    from PIL import Image

    png = next((offline_runs(tmp_path)[0].parent / "files" / "media" / "images").glob("grid_*.png"))
    assert np.asarray(Image.open(png).convert("RGB"))[0, 0].tolist() == [128, 128, 128]


def test_a_failure_during_the_run_stops_tracking_with_one_warning(tmp_path, wandb_home, caplog):
    """A picture W&B refuses mid-run: one warning, later calls are skipped, end_training still works."""
    from accelerate import Accelerator

    from gan_platform.tracking import SafeTracker
    from gan_platform.tracking.wandb import WandbTracker

    acc = Accelerator(log_with="wandb")
    tracker = SafeTracker(WandbTracker(acc, project="gan_platform", mode="offline"))
    tracker.start({"name": "probe"}, str(tmp_path))
    tracker.log({"train/d_loss": 1.0}, 1)
    assert tracker.failed is None and [t.name for t in acc.trackers] == ["wandb"]
    tracker.log_images({"grid": np.zeros((2, 3, 4, 5, 6))}, 2)  # not a picture: wandb.Image raises
    assert tracker.failed is not None and acc.trackers == []
    tracker.log({"train/d_loss": 0.5}, 3)
    tracker.finish({"status": "finished"})
    acc.end_training()
    assert len([r for r in caplog.records if r.levelname == "WARNING" and "failed in log_images" in r.getMessage()]) == 1
    assert tracker.state() == {}
    import wandb

    assert wandb.run is None  # the broken run was ended: a later run in this process starts clean


def test_pictures_reach_wandb_as_uint8():
    assert as_uint8(np.array([[0.0, 0.5, 1.0, 2.0]])).tolist() == [[[0] * 3, [128] * 3, [255] * 3, [255] * 3]]
    picture = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert as_uint8(picture).tolist() == picture.tolist()
    assert as_uint8(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)


@pytest.mark.parametrize("login", ["none", "bad key, no server"])
def test_online_that_wandb_refuses_is_recorded_offline_and_the_last_line_says_so(tmp_path, login):
    """tracker.mode=online with no login (the first-time user's case), or a key and no reachable
    server: one warning, the run recorded offline, and the closing line says it stayed offline and
    gives the one command that uploads it. W&B's own banner (`wandb online`, WANDB_MODE) is off."""
    env = {"WANDB_CONFIG_DIR": str(tmp_path / "home"), "WANDB_CACHE_DIR": str(tmp_path / "home"), "WANDB_SILENT": None}
    if login != "none":
        env.update({"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"})
    proc = run_cli(["dataset=ring8", "trainer.steps=10", "trainer.log_every=5", "trainer.progress=false",
                    "trainer.sample_every=10", "tracker.mode=online", "tracker.init_timeout=3"],
                   cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = list((tmp_path / "outputs" / "default").iterdir())
    for text in (proc.stdout + proc.stderr, (run_dir / "gan_platform.log").read_text()):
        assert text.count("WARNING") == 1 and text.count("W&B could not start online") == 1, text
    assert "wandb online" not in proc.stderr and "WANDB_MODE" not in proc.stderr and "offline-run-" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("gan_platform: run finished") and "so the run stayed offline" in last
    assert last.endswith(f"then upload it with: wandb sync {run_dir / 'wandb'})")
    (record,) = offline_runs(run_dir)
    assert [r["_step"] for r in read_run(record)["history"] if "train/d_loss" in r] == [5, 10]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/d_loss" in r] == [5, 10]
    assert (run_dir / "report.html").is_file() and (run_dir / "checkpoints" / "last" / "meta.json").is_file()


def test_an_offline_runs_last_line_gives_the_one_upload_command(tmp_path):
    proc = run_cli(["dataset=ring8", "trainer.steps=4", "trainer.progress=false", "eval.enabled=false", "report=false"],
                   cwd=tmp_path, env={"WANDB_CONFIG_DIR": str(tmp_path / "home"), "WANDB_SILENT": None}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = list((tmp_path / "outputs" / "default").iterdir())
    assert proc.stderr.strip().splitlines()[-1] == (
        f"gan_platform: run finished (run dir: {run_dir}; report: none, report=false; W&B: offline in {run_dir / 'wandb'}; "
        f"upload it with: wandb sync {run_dir / 'wandb'})")
    assert "wandb:" not in proc.stderr  # none of W&B's own lines


def test_tracker_config_is_checked_before_work():
    with pytest.raises(ConfigError, match="tracker.mode must be one of offline, online, disabled, got 'cloud'"):
        validate(compose(["tracker.mode=cloud"]))
    cfg = compose([])
    assert (cfg.tracker.name, cfg.tracker.mode, cfg.tracker.group) == ("wandb", "offline", "default")
    assert compose(["+experiment=wgan"]).tracker.group == "wgan"
    assert compose(["tracker=none"]).tracker.name == "none"


@pytest.mark.slow
def test_workspace_for_gan_runs_is_built_and_checked_without_saving(tmp_path):
    """`gan-dashboard --entity E --project P`: the wandb-workspaces object and the view spec W&B would receive."""
    import tomllib

    from gan_platform.tracking.workspace import build_workspace, layout

    workspace = build_workspace("team", "gans")
    shown = layout(workspace)
    assert [s["section"] for s in shown] == ["Samples", "Quality", "Mode collapse", "Losses", "Health"]
    panels = {s["section"]: s["panels"] for s in shown}
    assert panels["Samples"] == [{"title": "sample grids", "media": ["samples"]},
                                 {"table": "samples_by_class"}, {"table": "samples_scatter_table"}]
    assert {p["title"]: p["y"] for p in panels["Quality"]}["precision and recall"] == ["eval/precision", "eval/recall"]
    assert all(p["x"] == "eval/step" for p in panels["Quality"] + panels["Mode collapse"])
    assert ["eval/fid"] in [p["y"] for p in panels["Quality"]] and ["collapse/modes"] in [p["y"] for p in panels["Mode collapse"]]
    assert [p["y"] for p in panels["Losses"]][:2] == [["train/d_loss", "train/g_loss"], ["train/d_real", "train/d_fake"]]
    assert [p["title"] for p in panels["Health"]][:2] == ["gradient norms", "D accuracy on real and on fake"]
    # the view spec as it would be saved: every panel of a section, its x axis and metrics
    spec = workspace._to_model().model_dump()
    assert spec["entity"] == "team" and spec["project"] == "gans"
    saved = spec["spec"]["section"]["panel_bank_config"]["sections"]
    assert [s["name"] for s in saved] == ["Samples", "Quality", "Mode collapse", "Losses", "Health"]
    fid = next(p for p in saved[1]["panels"] if p["config"].get("metrics") == ["eval/fid"])
    assert fid["view_type"] == "Run History Line Plot" and fid["config"]["x_axis"] == "eval/step"
    assert sum(len(s["panels"]) for s in saved) == sum(len(s["panels"]) for s in shown)
    # the command prints the same layout without saving, and is installed as gan-dashboard
    proc = run_cli(["--entity", "team", "--project", "gans", "--print"], cwd=tmp_path, module="gan_platform.tracking.workspace", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == shown
    from helpers import ROOT

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gan-dashboard"] == "gan_platform.tracking.workspace:main"
