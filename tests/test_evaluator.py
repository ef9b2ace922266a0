"""The evaluator in real runs: metrics in metrics.jsonl, best checkpoint, early stop, protocol,
conditional metrics, stacked digits, and a perfect sampler's scores."""

import json
import math

import pytest
from accelerate import Accelerator

from helpers import compose, train
from helpers.evaluation import DIGITS, RING, PerfectSampler
from gan_platform.evaluation.build import build_gan_evaluator
from gan_platform.runs.rundir import read_metrics


def _evals(run_dir):
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if "eval/fid" in r]


def test_a_ring_run_logs_quality_diversity_and_collapse_and_keeps_the_best(tmp_path):
    summary = train(tmp_path, RING + ["trainer.steps=20", "eval.every=10", "eval.num_samples=500"])
    evals = _evals(tmp_path)
    assert [r["step"] for r in evals] == [10, 20]
    keys = {"eval/fid", "eval/kid", "eval/precision", "eval/recall", "eval/density", "eval/coverage",
            "collapse/modes", "collapse/high_quality", "collapse/reverse_kl"}
    assert keys <= set(evals[0])
    for r in evals:
        assert 0 <= r["collapse/modes"] <= 8 and 0 <= r["collapse/high_quality"] <= 100
        assert 0 <= r["collapse/reverse_kl"] <= math.log(8) + 1e-9 and r["eval/fid"] >= 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["final"]["eval/fid"] == evals[-1]["eval/fid"]
    best = s["best"]
    assert "collapse/modes" in best and best["collapse/modes"] == max(r["collapse/modes"] for r in evals)  # auto: modes, max
    assert (tmp_path / "checkpoints" / "best").exists()
    p = s["protocol"]
    assert (p["extractor"], p["num_features"], p["num_fake"], p["num_fake_used"], p["num_real"], p["prdc_k"]) == \
        ("identity", 2, 500, 500, 2500, 5)
    assert "held-out" in p["real_split"] and p["evaluations"] == 2
    assert summary["status"] == "finished"


def test_early_stop_when_the_metric_stops_improving(tmp_path):
    # a generator that barely moves never covers more modes than at its first evaluation
    summary = train(tmp_path, RING + ["trainer.steps=50", "optimizer.lr=1e-12", "eval.every=1", "eval.num_samples=200",
                                      "eval.best_metric=collapse/modes", "eval.early_stop_patience=2"])
    assert summary["status"] == "early_stopped" and summary["step"] == 3
    assert [r["step"] for r in _evals(tmp_path)] == [1, 2, 3]
    assert json.loads((tmp_path / "summary.json").read_text())["best"]["step"] == 1


def test_conditional_mixture_reports_class_mode_accuracy(tmp_path):
    train(tmp_path, RING + ["task.conditional=true", "trainer.steps=5", "eval.num_samples=400"])
    last = _evals(tmp_path)[-1]
    assert 0 <= last["collapse/class_mode_accuracy"] <= 1
    assert {f"eval/fid_class_{c}" for c in range(8)} <= set(last)
    assert last["eval/fid_class_mean"] == pytest.approx(sum(last[f"eval/fid_class_{c}"] for c in range(8)) / 8)


def test_conditional_digits_report_class_accuracy_and_the_class_histogram(tmp_path):
    train(tmp_path, DIGITS + ["task.conditional=true", "trainer.steps=3", "eval.num_samples=200"])
    last = _evals(tmp_path)[-1]
    assert 0 <= last["eval/class_accuracy"] <= 1 and 1 <= last["collapse/classes"] <= 10
    assert 0 <= last["collapse/class_entropy"] <= math.log(10) + 1e-9 and "eval/fid_class_mean" in last
    p = json.loads((tmp_path / "summary.json").read_text())["protocol"]
    assert p["extractor"] == "digits" and len(p["weights_sha256"]) == 64 and p["classifier_test_accuracy"] >= 0.95


def test_stacked_digits_count_modes_out_of_1000(tmp_path):
    train(tmp_path, DIGITS + ["dataset=stacked_digits", "dataset.eval_size=300",
                              "trainer.steps=2", "eval.num_samples=300"])
    last = _evals(tmp_path)[-1]
    assert 1 <= last["collapse/modes"] <= 300 and 0 < last["collapse/reverse_kl"] <= math.log(1000) + 1e-9
    p = json.loads((tmp_path / "summary.json").read_text())["protocol"]
    assert p["num_features"] == 192 and p["num_real"] == 300


@pytest.mark.parametrize("dataset,modes", [("ring8", 8), ("grid25", 25)])
def test_a_perfect_sampler_scores_all_modes(dataset, modes):
    cfg = compose([f"dataset={dataset}"])
    from hydra.utils import instantiate

    data = instantiate(cfg.dataset)
    ev = build_gan_evaluator(cfg, data, PerfectSampler(data), Accelerator(cpu=True))
    out = ev.evaluate(PerfectSampler(data, 1), step=1)
    assert out["collapse/modes"] == modes and out["collapse/high_quality"] == pytest.approx(98.9, abs=0.8)
    assert out["eval/fid"] < 0.1 and out["eval/precision"] > 0.9 and out["eval/recall"] > 0.9


def test_real_digits_as_samples_give_near_zero_fid():
    """Samples in [-1, 1] reach the classifier as the real ones do: real digits score FID ~0."""
    cfg = compose(["dataset=digits", "model=dcgan"])
    from hydra.utils import instantiate

    data = instantiate(cfg.dataset)
    ev = build_gan_evaluator(cfg, data, PerfectSampler(data), Accelerator(cpu=True))
    good = ev.evaluate(PerfectSampler(data, 1), step=1)

    class Shifted(PerfectSampler):  # the classic mistake: images in [0, 1] instead of [-1, 1]
        def sample(self, n, labels=None, z=None):
            return (super().sample(n) + 1) / 2

    bad = ev.evaluate(Shifted(data, 1), step=2)
    assert good["eval/fid"] < 0.05 * bad["eval/fid"] and good["collapse/classes"] == 10
    assert good["collapse/reverse_kl"] < 0.01 and good["eval/precision"] > 0.8


def test_evaluation_turned_off_trains_only(tmp_path):
    """eval.enabled=false: no metrics rows, no best checkpoint, no protocol; the losses are all there."""
    summary = train(tmp_path, RING + ["trainer.steps=20", "trainer.log_every=5", "eval.every=10", "eval.enabled=false"])
    records = list(read_metrics(tmp_path / "metrics.jsonl"))
    assert [r["step"] for r in records] == [5, 10, 15, 20] and all("train/d_loss" in r for r in records)
    assert not any(k.startswith(("eval/", "collapse/")) for r in records for k in r)
    assert summary["status"] == "finished" and not any(k.startswith(("eval/", "collapse/")) for k in summary["final"])
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last"]
    with pytest.raises(Exception, match="eval.early_stop_patience stops on evaluations, but eval.enabled=false"):
        train(tmp_path / "other", RING + ["eval.enabled=false", "eval.early_stop_patience=2"])
