"""The HTML dashboards from real short runs: a run's report.html, a sweep's comparison page, and
both rendered by headless Chromium with every image loaded."""

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from conftest import TINY, run_cli, train
from gan_platform.tracking.report import ReportWriter, write_comparison, write_run_report
from gan_platform.runs.rundir import RunDir

RING = [o for o in TINY if o != "report=false"] + ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
               "trainer.steps=10", "trainer.log_every=5", "trainer.sample_every=10", "eval.every=0"]
TRIALS = {"trial-000": ["loss=nonsaturating", "optimizer.lr=0.0001"],
          "trial-001": ["loss=hinge", "optimizer.lr=0.001"],
          "trial-002": ["loss=least_squares", "optimizer.lr=0.01"]}


def build_sweep(root: Path) -> None:
    """A sweep dir of three real runs, each with the .hydra/overrides.yaml Hydra writes."""
    for name, params in TRIALS.items():
        overrides = ["dataset=ring8", *params]
        train(root / name, RING + params)
        (root / name / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))


@pytest.fixture(scope="session")
def built_sweep(tmp_path_factory) -> Path:
    """Trained once for the whole session, even across xdist workers (the shared temp root, a lock)."""
    from filelock import FileLock

    if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process: the session's own temp dir
        root = tmp_path_factory.mktemp("report_sweep")
        build_sweep(root)
        return root
    root = tmp_path_factory.getbasetemp().parent / "report_sweep"  # shared by this session's workers
    with FileLock(str(root) + ".lock"):
        if not (root / "done").exists():
            shutil.rmtree(root, ignore_errors=True)
            build_sweep(root)
            (root / "done").touch()
    return root


@pytest.fixture
def sweep(built_sweep, tmp_path) -> Path:
    """This test's own copy of the sweep, free to rewrite."""
    copy = tmp_path / "sweep"
    shutil.copytree(built_sweep, copy, ignore=shutil.ignore_patterns("done"))
    return copy


def images(page: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]+)"', page)


def decode(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def test_run_report_shows_curves_samples_and_config(sweep, tmp_path):
    run = sweep / "trial-001"
    page = (run / "report.html").read_text()  # written by the trainer's callback at the end
    srcs = images(page)
    plots = [decode(s) for s in srcs if s.startswith("data:")]
    assert len(plots) == 2 and plots[0].size[0] > 200  # training curves, then the final evaluation's metrics
    samples = [s for s in srcs if not s.startswith("data:")]
    assert samples[0] == "samples/step_000010.png"  # the latest, large
    assert samples[1:] == ["samples/step_000000.png", "samples/step_000010.png"]
    assert all((run / s).is_file() for s in samples)
    config = page.split("<pre>", 1)[1]
    assert "name: hinge" in config and "lr: 0.001" in config and "gan_platform.data.mixtures.ring8" in config
    assert "No evaluation metrics yet" not in page and "eval/fid" in page  # the final evaluation's
    assert "finished" in page and "step 10 of 10" in page
    # evaluation records appear in the page once metrics.jsonl has them
    copy = run
    with open(copy / "metrics.jsonl", "a") as f:
        for step, fid, modes in [(5, 9.0, 3), (10, 4.0, 6)]:
            f.write(json.dumps({"step": step, "eval/fid": fid, "collapse/modes": modes}) + "\n")
    proc = run_cli([str(copy)], cwd=tmp_path, module="gan_platform.report", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == copy / "report.html"
    page = (copy / "report.html").read_text()
    assert "No evaluation metrics yet" not in page
    assert len([s for s in images(page) if s.startswith("data:")]) == 2


def test_report_writer_refreshes_at_eval_and_end_within_its_budget(sweep, tmp_path):
    run = sweep / "trial-000"
    trainer = SimpleNamespace(run_dir=RunDir(run), config={"name": "probe", "seed": 0})
    stingy = ReportWriter(max_fraction=0.0)
    for event in ("eval", "eval", "samples", "eval"):
        stingy(event, trainer)
    assert stingy.writes == 1  # the first refresh, then none: the budget is spent
    stingy("end", trainer)
    assert stingy.writes == 2  # the page at the end is always written
    assert "name: probe" in (run / "report.html").read_text()
    generous = ReportWriter(max_fraction=1.0)
    for event in ("eval", "samples", "eval", "end"):
        generous(event, trainer)
    assert generous.writes == 3


def ranked_runs(page: str) -> list[str]:
    return re.findall(r'<td><a href="(trial-\d+)/report.html">', page)


def final(sweep: Path, run: str, key: str) -> float:
    return RunDir(sweep / run).read_summary()["final"][key]


def test_sweep_comparison_ranks_runs_and_plots_parameters(sweep):
    path = write_comparison(sweep, "train/g_loss", "min")
    assert path == sweep / "report.html"
    page = path.read_text()
    order = ranked_runs(page)
    values = [final(sweep, r, "train/g_loss") for r in order]
    assert sorted(order) == sorted(TRIALS) and values == sorted(values)
    assert "<th>loss</th>" in page and "<th>optimizer.lr</th>" in page
    assert "Shared by every run: dataset=ring8" in page
    plots = [decode(s) for s in images(page) if s.startswith("data:")]
    assert len(plots) == 2 and plots[0].size[0] > 400  # metric against 2 parameters; metric over steps
    thumbs = [s for s in images(page) if not s.startswith("data:")]
    assert len(thumbs) == 3 and all((sweep / t).is_file() for t in thumbs)
    # higher is better: the order reverses
    assert ranked_runs(write_comparison(sweep, "train/g_loss", "max").read_text()) == order[::-1]


def test_sweep_comparison_defaults_to_the_sweeps_own_metric(sweep):
    copy = sweep
    page = write_comparison(copy).read_text()  # no sweep.json: the first known evaluation metric
    assert "ranked by <b>eval/fid</b> (lower is better)" in page
    fids = [final(copy, r, "eval/fid") for r in ranked_runs(page)]
    assert fids == sorted(fids)
    (copy / "sweep.json").write_text(json.dumps({"config": {"metric": {"name": "train/d_loss", "goal": "maximize"}}}))
    page = write_comparison(copy).read_text()
    assert "ranked by <b>train/d_loss</b> (higher is better)" in page
    values = [final(copy, r, "train/d_loss") for r in ranked_runs(page)]
    assert values == sorted(values, reverse=True)


def test_report_command_errors_are_one_sentence(tmp_path):
    proc = run_cli([str(tmp_path / "missing")], cwd=tmp_path, module="gan_platform.report", timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "No folder at" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="holds no run dirs"):
        write_comparison(tmp_path / "empty")


CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
                 if shutil.which(b)), None)
# After load, count the images that decoded (naturalWidth > 0) and write "loaded/total" on <body>.
CHECK = ('<img alt="deliberately missing" src="no-such-picture.png"><script>window.addEventListener("load", () => {'
         'const all = [...document.images]; const ok = all.filter(i => i.complete && i.naturalWidth > 0).length;'
         'document.body.setAttribute("data-images", ok + "/" + all.length);});</script></body>')


def loaded_images(page: Path, profile: Path) -> tuple[int, int]:
    """(images loaded, images on the page) as headless Chromium sees `page`, plus one missing image."""
    probe = page.with_name("_render_check.html")
    probe.write_text(page.read_text().replace("</body>", CHECK))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
           "--virtual-time-budget=10000", "--dump-dom", probe.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    probe.unlink()
    m = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert m, dom[:2000]
    return int(m.group(1)), int(m.group(2))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian's `chromium` package; scripts/test installs it)")
def test_pages_render_in_headless_chromium_with_every_image_loaded(sweep, tmp_path):
    run_page = write_run_report(sweep / "trial-002")
    sweep_page = write_comparison(sweep, "train/g_loss", "min")
    for page, expected in ((run_page, 2 + 1 + 2), (sweep_page, 2 + 3)):
        loaded, total = loaded_images(page, tmp_path / f"profile-{page.parent.name}")
        assert total == expected + 1 and loaded == expected  # all but the deliberately missing one


def test_metric_series_and_panels():
    from gan_platform.tracking.report.plots import panels_for, series_from_records

    records = [{"step": 5, "train/d_loss": 1.5, "train/g_loss": 0.5, "eval/fid": "nan", "status": "x"},
               {"step": 10, "train/d_loss": 1.0, "train/g_loss": 0.7, "eval/fid": 3.0}, {"no_step": 1}]
    series = series_from_records(records)
    assert series["train/d_loss"] == ([5, 10], [1.5, 1.0]) and "status" not in series
    steps, fid = series["eval/fid"]
    assert steps == [5, 10] and fid[0] != fid[0] and fid[1] == 3.0  # "nan" as written by the run dir -> NaN
    assert panels_for(series, ["train/g_loss", "train/d_loss", "eval/fid"]) == [
        ("adversarial losses", ["train/d_loss", "train/g_loss"]), ("eval/fid", ["eval/fid"])]
