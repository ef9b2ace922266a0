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

from helpers import TINY, run_cli, train
from gan_platform.tracking.report import ReportWriter, write_comparison, write_run_report
from gan_platform.runs.rundir import RunDir, read_metrics

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
    assert len(plots) == 3 and plots[0].size[0] > 200  # training curves, health signals, then the final evaluation's metrics
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
    assert len([s for s in images(page) if s.startswith("data:")]) == 3  # curves, health signals, evaluation


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
    for page, expected in ((run_page, 2 + 1 + 3), (sweep_page, 2 + 3)):  # run page: 3 plots with the health signals
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


# ---- the run page: samples and headline first, grouped curves, warnings, reloads while running ----

CGAN = ["+experiment=cgan", *[o for o in TINY if o != "report=false"], "trainer.steps=4", "trainer.log_every=2",
        "trainer.sample_every=2", "eval.every=2", "eval.num_samples=200"]


@pytest.fixture(scope="session")
def built_cgan(tmp_path_factory) -> Path:
    """A 4-step conditional GAN on the digits, evaluated at steps 2 and 4 (per-class FIDs), trained once."""
    run = tmp_path_factory.mktemp("report_cgan") / "run"
    train(run, CGAN)
    return run


@pytest.fixture
def cgan_run(built_cgan, tmp_path) -> Path:
    copy = tmp_path / "cgan"
    shutil.copytree(built_cgan, copy)
    return copy


def sections(page: str) -> list[str]:
    return re.findall(r"<h2>([^<]+)</h2>", page)


@pytest.mark.slow
def test_run_page_leads_with_samples_and_the_headline_then_grouped_curves(cgan_run):
    summary = RunDir(cgan_run).read_summary()
    page = write_run_report(cgan_run).read_text()
    lead = page.split("<h2>", 1)[0]  # everything above the first section
    # the latest grid large, with a slider over all three grids
    viewer = re.search(r'<div class="viewer" data-grids="([^"]+)"><img id="grid" alt="[^"]*" src="([^"]+)">'
                       r'<input type="range" min="0" max="(\d+)" value="(\d+)"', lead)
    grids = json.loads(viewer.group(1).replace("&quot;", '"'))
    assert grids == [[0, "samples/step_000000.png"], [2, "samples/step_000002.png"], [4, "samples/step_000004.png"]]
    assert viewer.group(2) == "samples/step_000004.png" and viewer.group(3) == viewer.group(4) == "2"
    # the headline: FID first, its final value summary.json's, its best value and step from metrics.jsonl
    cards = re.findall(r'<div class="card[^"]*" data-metric="([^"]+)">.*?data-value="([^"]+)".*?<div class="note">([^<]*)</div>', lead)
    assert [c[0] for c in cards] == ["eval/fid", "eval/class_accuracy", "eval/kid", "eval/precision"]
    assert float(cards[0][1]) == summary["final"]["eval/fid"]
    fids = {r["step"]: r["eval/fid"] for r in read_metrics(cgan_run / "metrics.jsonl") if "eval/fid" in r}
    best_step = min(fids, key=fids.get)
    assert cards[0][2].startswith(f"best {fids[best_step]:.4g} at step {best_step} · lower is better")
    assert "higher is better" in cards[1][2]
    # grouped curves, then the protocol and the config; no per-class curves, one bar chart figure per evaluation
    assert sections(page) == ["Samples over training", "Adversarial losses and D's scores on real and fake",
                              "Training health", "Evaluation and mode collapse", "Evaluation protocol", "Summary", "Config"]
    assert "<h3>eval/fid per class</h3>" in page
    plots = [decode(s) for s in images(page) if s.startswith("data:")]
    assert len(plots) == 4  # losses and D's scores; health signals; evaluation; per-class bars (one panel an evaluation)
    assert "eval/fid_class_3" not in page.split("<h2>Evaluation protocol</h2>")[0].split("<h2>Evaluation and mode collapse</h2>")[1]
    assert f"<td>real_sha256</td><td>{summary['protocol']['real_sha256']}</td>" in page
    assert "http-equiv=\"refresh\"" not in page  # finished: no reloading


@pytest.mark.slow
def test_run_page_shows_health_signals_warnings_and_reloads_while_running(cgan_run):
    with open(cgan_run / "metrics.jsonl", "a") as f:
        for step in (2, 4):
            f.write(json.dumps({"step": step, "train/g_grad_norm": 1.0 + step, "train/d_grad_norm": 2.0, "train/d_acc_real": 0.7,
                                "train/d_acc_fake": 0.6, "train/augment_p": 0.01 * step}) + "\n")
    summary = RunDir(cgan_run).read_summary()
    with open(cgan_run / "metrics.jsonl", "a") as f:  # an evaluation newer than summary.json's
        f.write(json.dumps({"step": 6, "eval/fid": 123.5}) + "\n")
    RunDir(cgan_run).write_summary({**summary, "status": "running", "warnings": ["D wins: its accuracy on fake is 1.00."]})
    page = write_run_report(cgan_run).read_text()
    assert re.search(r'data-metric="eval/fid">.*?data-value="123.5"', page)  # running: metrics.jsonl's newest
    head = page.split("<h2>", 1)[0]
    assert '<div class="warnings"><b>Warnings</b><ul><li>D wins: its accuracy on fake is 1.00.</li></ul></div>' in head
    assert '<meta http-equiv="refresh" content="30">' in page and "reloads every 30 s" in head
    assert sections(page)[2] == "Training health"
    assert len([s for s in images(page) if s.startswith("data:")]) == 4  # the health curves join
    from gan_platform.tracking.report.plots import panels_for, series_from_records

    series = series_from_records(list(read_metrics(cgan_run / "metrics.jsonl")))
    assert [t for t, _ in panels_for(series, ["train/g_grad_norm", "train/d_grad_norm", "train/d_acc_real",
                                               "train/d_acc_fake", "train/augment_p"])] == [
        "gradient norms", "D accuracy on real and on fake", "train/augment_p"]
    RunDir(cgan_run).write_summary({**summary, "status": "finished"})
    assert "refresh" not in write_run_report(cgan_run).read_text()


def test_per_class_numbers_become_one_bar_chart_per_evaluation():
    from gan_platform.tracking.report.plots import per_class, per_class_bars, series_from_records

    records = [{"step": s, **{f"eval/fid_class_{c}": 10.0 * c + s for c in range(3)}, "eval/fid_class_mean": 1.0} for s in (5, 10)]
    by_class = per_class(series_from_records(records))
    assert by_class == {"eval/fid": {5: {0: 5.0, 1: 15.0, 2: 25.0}, 10: {0: 10.0, 1: 20.0, 2: 30.0}}}  # "mean" is no class
    one, two = per_class_bars({5: by_class["eval/fid"][5]}, "eval/fid"), per_class_bars(by_class["eval/fid"], "eval/fid")
    assert Image.open(io.BytesIO(two)).size[0] > Image.open(io.BytesIO(one)).size[0]  # a panel per evaluation


# ---- comparison pages ----

def test_sweep_page_shows_best_grids_and_parallel_coordinates(sweep):
    for run in TRIALS:  # an evaluation at step 0 that is better than the last: the best grid is step 0's
        with open(sweep / run / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 0, "eval/fid": -1.0}) + "\n")
    page = write_comparison(sweep).read_text()
    thumbs = [s for s in images(page) if not s.startswith("data:")]
    assert sorted(thumbs) == [f"{r}/samples/step_000000.png" for r in sorted(TRIALS)]
    assert page.count("<td>0</td>") >= 3  # "best at step" 0
    svg = re.search(r'<svg class="parallel".*?</svg>', page).group(0)
    lines = re.findall(r'<polyline class="run" data-metric="([^"]+)" points="([^"]+)"', svg)
    assert sorted(float(m) for m, _ in lines) == sorted(final(sweep, r, "eval/fid") for r in TRIALS)
    assert all(len(points.split()) == 3 for _, points in lines)  # loss, optimizer.lr, eval/fid
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched


def test_comparing_runs_warns_when_their_protocols_differ(sweep, built_cgan, tmp_path):
    a, b = sweep / "trial-000", sweep / "trial-001"
    proc = run_cli([str(a), str(b)], cwd=tmp_path, module="gan_platform.report", timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = Path(proc.stdout.strip())
    assert out == sweep / "comparison.html"
    page = out.read_text()
    assert "Comparison of 2 runs" in page and 'class="warnings"' not in page  # same protocol
    assert "<th>loss._target_</th>" in page or "<th>loss.name</th>" in page  # told apart by their configs
    assert sorted(ranked(page)) == ["trial-000", "trial-001"]
    # a glob, and a run measured on other data with another extractor: a warning names what differs
    cgan = shutil.copytree(built_cgan, sweep / "cgan")
    proc = run_cli([str(sweep / "*"), "--out", str(tmp_path / "all.html")], cwd=tmp_path, module="gan_platform.report", timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "all.html").read_text()
    assert len(ranked(page)) == 4
    warnings = re.search(r'<div class="warnings">(.*?)</div>', page).group(1)
    for key in ("real_sha256", "extractor", "num_real", "num_fake"):
        assert f"differ in {key}" in warnings
    assert RunDir(cgan).read_summary()["protocol"]["real_sha256"][:16] in warnings
    proc = run_cli([str(tmp_path / "nothing-*")], cwd=tmp_path, module="gan_platform.report", timeout=120)
    assert proc.returncode == 2 and "No run dir matches" in proc.stderr and proc.stderr.strip().count("\n") == 0


def ranked(page: str) -> list[str]:
    return re.findall(r'<tr(?: class="best")?><td>\d+</td><td><a href="[^"]*">([^<]+)</a>', page)


def test_a_100_run_sweep_page_stays_small(built_sweep, tmp_path):
    """100 runs made from one real run's files with varied numbers: the page links the grids, so it stays small."""
    source = built_sweep / "trial-000"
    sweep_dir = tmp_path / "big"
    for i in range(100):
        run = sweep_dir / f"trial-{i:03d}"
        shutil.copytree(source, run, ignore=shutil.ignore_patterns("checkpoints", "*.pt", "report.html"))
        scale = 1.0 + i / 10
        records = [{k: (v * scale if isinstance(v, float) else v) for k, v in r.items()} for r in read_metrics(source / "metrics.jsonl")]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        summary = RunDir(source).read_summary()
        summary["final"] = {k: v * scale if isinstance(v, float) else v for k, v in summary["final"].items()}
        RunDir(run).write_summary(summary)
        (run / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={0.0001 * (i + 1)}\n- loss={['hinge', 'least_squares'][i % 2]}\n")
    page = write_comparison(sweep_dir)
    size = page.stat().st_size
    assert size < 2_000_000, size
    text = page.read_text()
    order = ranked(text)
    assert len(order) == 100 and order[:3] == ["trial-000", "trial-001", "trial-002"]  # scaled up FIDs: lowest first
    assert text.count('<polyline class="run"') == 100


# ---- rendered by headless Chromium: the slider, every image, the headline, a screenshot ----

# After load: move the slider through every grid (ending on the last), wait for each picture, then count the
# page's images that decoded and read the headline card; the result goes on <body> as JSON for --dump-dom.
PROBE = """<script>window.addEventListener("load", async () => {
  const ready = (im) => new Promise((done) => { if (im.complete) return done();
    im.addEventListener("load", done, {once: true}); im.addEventListener("error", done, {once: true}); });
  const out = {srcs: [], widths: []};
  const viewer = document.querySelector(".viewer");
  if (viewer) {
    const range = viewer.querySelector("input"), img = viewer.querySelector("img");
    for (let i = 0; i <= Number(range.max); i++) {
      range.value = String(i); range.dispatchEvent(new Event("input")); await ready(img);
      out.srcs.push(img.getAttribute("src")); out.widths.push(img.naturalWidth);
    }
    out.step = viewer.querySelector(".step").textContent;
  }
  const all = [...document.images];
  await Promise.all(all.map(ready));
  out.images = [all.filter((i) => i.complete && i.naturalWidth > 0).length, all.length];
  const card = document.querySelector(".card.headline");
  if (card) out.headline = [card.dataset.metric, Number(card.querySelector("[data-value]").dataset.value)];
  out.lines = document.querySelectorAll("svg.parallel polyline.run").length;
  document.body.setAttribute("data-probe", JSON.stringify(out));
});</script></body>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def probe(page: Path, profile: Path) -> dict:
    """What headless Chromium sees on `page` once PROBE has moved its slider and loaded its images."""
    import html as _html

    probed = page.with_name("_probe_" + page.name)
    probed.write_text(page.read_text().replace("</body>", PROBE))
    dom = chromium("--virtual-time-budget=15000", "--dump-dom", probed.resolve().as_uri(), profile=profile).stdout
    probed.unlink()
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, dom[:2000]
    return json.loads(_html.unescape(m.group(1)))


def distinct_shades(picture: Image.Image) -> int:
    import numpy as np

    return len(np.unique(np.asarray(picture.convert("L"))))


def screenshot(page: Path, out: Path, profile: Path) -> Image.Image:
    chromium("--window-size=1280,1600", "--hide-scrollbars", f"--screenshot={out}", page.resolve().as_uri(), profile=profile)
    return Image.open(out)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian's `chromium` package; scripts/test installs it)")
def test_run_page_in_chromium_slider_images_and_headline(cgan_run, tmp_path):
    page = write_run_report(cgan_run)
    seen = probe(page, tmp_path / "profile")
    grids = [f"samples/step_{s:06d}.png" for s in (0, 2, 4)]
    assert seen["srcs"] == grids and seen["step"] == "4"  # the slider went through every grid and ended on the last
    assert all(w == Image.open(cgan_run / g).size[0] for w, g in zip(seen["widths"], grids))  # each one loaded
    assert seen["images"] == [8, 8]  # the large grid, a strip of three, four plots (health signals too): every one decoded
    summary = RunDir(cgan_run).read_summary()
    assert seen["headline"] == ["eval/fid", summary["final"]["eval/fid"]]
    shot = screenshot(page, tmp_path / "run_page.png", tmp_path / "profile-shot")
    assert shot.size == (1280, 1600)
    assert distinct_shades(shot) > 20  # something was drawn, not a blank page


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian's `chromium` package; scripts/test installs it)")
def test_sweep_page_in_chromium_every_image_and_run_line(sweep, tmp_path):
    page = write_comparison(sweep, "train/g_loss", "min")
    seen = probe(page, tmp_path / "profile")
    assert seen["images"] == [5, 5]  # three best grids, two plots
    assert seen["lines"] == 3  # parallel coordinates: one line per run
    shot = screenshot(page, tmp_path / "sweep_page.png", tmp_path / "profile-shot")
    assert shot.size == (1280, 1600) and distinct_shades(shot) > 20


def test_runs_whose_configs_have_different_keys_compare_and_show_what_one_lacks(sweep, tmp_path, monkeypatch):
    """A run with W&B (tracker.entity: null, tracker.mode, ...) beside one made with tracker=none:
    the keys only one config holds are columns, shown as `absent` for the other run."""
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home"))
    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)
    tracked = tmp_path / "tracked"
    train(tracked, [o for o in RING if o != "tracker=none"] + ["tracker=wandb", "trainer.steps=5"])
    assert list((tracked / "wandb").glob("offline-run-*"))
    proc = run_cli([str(sweep / "trial-000"), str(tracked), "--out", str(tmp_path / "both.html")], cwd=tmp_path,
                   module="gan_platform.report", timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "both.html").read_text()
    header = re.findall(r"<th>([^<]+)</th>", page)
    column = header.index("tracker.entity")
    rows = {name: re.findall(r"<td>(.*?)</td>", row) for name, row in
            re.findall(r'<tr(?: class="best")?><td>\d+</td><td><a href="[^"]*">([^<]+)</a></td>(.*?)</tr>', page)}
    by_run = {name: cells[column - 2] for name, cells in rows.items()}
    assert by_run == {"sweep/trial-000": "absent", "tracked": ""}, by_run  # W&B's entity is null: an empty cell


def test_a_comparison_defaults_to_a_quality_metric_every_run_has_and_a_tie_has_no_winner(sweep, tmp_path):
    """The first-time user's `report A B` ranked by train/g_loss; it now ranks by the first quality
    metric every run has (these ring runs: the FID of the points), and runs level on it get no winner."""
    from gan_platform.tracking.report.sweep_page import collect, default_metric, find_runs

    assert default_metric(collect(find_runs(sweep), None, "min")) == "eval/fid"
    (sweep / "bare").mkdir()  # a run with losses only
    RunDir(sweep / "bare").write_summary({"status": "finished", "final": {"train/g_loss": 0.5, "collapse/modes": 3.0}})
    rows = collect(find_runs(sweep), None, "min")
    assert default_metric(rows) == "collapse/modes"  # the first that every run has
    assert default_metric([r for r in rows if r["run"].name == "bare"]) == "collapse/modes"
    RunDir(sweep / "bare").write_summary({"status": "finished", "final": {"train/g_loss": 0.5}})
    assert default_metric([r for r in collect(find_runs(sweep), None, "min") if r["run"].name == "bare"]) is None
    shutil.rmtree(sweep / "bare")
    proc = run_cli([str(sweep / "trial-000"), str(sweep / "trial-001"), "--out", str(tmp_path / "two.html")],
                   cwd=tmp_path, module="gan_platform.report", timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "two.html").read_text()
    assert "ranked by <b>eval/fid</b> (lower is better)" in page and '<tr class="best">' in page
    for run in TRIALS:  # all level
        summary = RunDir(sweep / run).read_summary()
        RunDir(sweep / run).write_summary({**summary, "final": {**summary["final"], "eval/fid": 1.5}})
    page = write_comparison(sweep).read_text()
    assert "ranked by <b>eval/fid</b>" in page and '<tr class="best">' not in page and len(ranked(page)) == 3


@pytest.mark.parametrize("keys", [["eval/precision"], ["eval/precision", "train/d_loss", "eval/recall"]])
def test_chart_tick_labels_fit_inside_the_picture(keys):
    """A one-panel chart of values such as 0.0655 showed '065': its left margin was a fraction of a
    narrow figure. A label cut at the edge leaves dark pixels in the picture's outer columns."""
    import numpy as np

    from gan_platform.tracking.report.plots import small_multiples

    series = {"eval/precision": ([0, 1, 2, 3], [0.061, 0.065, 0.069, 0.0655]),
              "eval/recall": ([0, 1, 2, 3], [-0.00123, 0.0044, 0.0031, 0.00021]),
              "train/d_loss": ([0, 1, 2, 3], [1234.5, 1300.25, 1250.75, 1299.5])}
    grey = np.asarray(Image.open(io.BytesIO(small_multiples(series, keys))).convert("L"))
    assert grey[:, :3].min() > 200 and grey[:, -3:].min() > 200
