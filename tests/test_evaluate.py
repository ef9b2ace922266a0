"""`python -m gan_platform.evaluate`: a trained G measured after the fact, with its protocol; sample
sets split across processes; reference statistics; the Inception Score; truncation."""

import json
import subprocess
import sys

import pytest
import torch

from helpers import cli_env
from helpers.evaluation import evaluate, inception_shaped_weights
from helpers.launch import free_port
from gan_platform.evaluate import main as evaluate_main
from gan_platform.evaluation.features import INCEPTION_FILE
from gan_platform.runs.generator import load_generator, truncated_noise
from gan_platform.runs.metrics import best_mode


def test_evaluate_writes_mean_and_std_over_sample_sets_with_the_protocol(digit_run, capsys):
    out, path = evaluate([digit_run, "--num-samples", 120, "--seeds", 3, "--name", "three"], capsys)
    assert path == str(digit_run / "eval_three.json")
    report = json.loads((digit_run / "eval_three.json").read_text())
    fid = report["metrics"]["eval/fid"]
    assert len(fid["values"]) == 3 and len(set(fid["values"])) == 3  # three independent sets
    assert fid["mean"] == pytest.approx(sum(fid["values"]) / 3)
    assert fid["std"] == pytest.approx(torch.tensor(fid["values"], dtype=torch.float64).std().item())
    for key in ("eval/kid", "eval/precision", "eval/class_accuracy", "collapse/classes", "eval/fid_class_mean"):
        assert key in report["metrics"], key
    p = report["protocol"]
    assert (p["num_samples"], p["num_fake_used"], p["sample_sets"], p["seeds"]) == (120, 120, 3, [0, 1, 2])
    assert (p["extractor"], p["generator"], p["step"], p["truncation"], p["num_real"]) == ("digits", "generator", 3, None, 1797)
    assert p["real_sha256"] and p["weights_sha256"] and "eval/fid" in out and "over 3 sample sets" in out
    # the same seed gives the same set; a run measured twice gives the same numbers
    evaluate([digit_run, "--num-samples", 120, "--seeds", 1, "--name", "one", "--metrics", "fid,class_accuracy"])
    one = json.loads((digit_run / "eval_one.json").read_text())
    assert one["metrics"]["eval/fid"]["values"] == [fid["values"][0]]
    assert set(one["metrics"]) == {"eval/fid", "eval/class_accuracy"} | {f"eval/fid_class_{c}" for c in range(10)} | {"eval/fid_class_mean"}


def test_fid_against_a_saved_reference_equals_fid_against_the_real_data(digit_run, tmp_path):
    ref = tmp_path / "digits_ref.npz"
    evaluate([digit_run, "--num-samples", 100, "--save-ref", ref, "--metrics", "fid", "--name", "real"])
    evaluate([digit_run, "--num-samples", 100, "--ref", ref, "--metrics", "fid", "--name", "ref"])
    real = json.loads((digit_run / "eval_real.json").read_text())
    from_ref = json.loads((digit_run / "eval_ref.json").read_text())
    assert from_ref["metrics"]["eval/fid"]["mean"] == pytest.approx(real["metrics"]["eval/fid"]["mean"], rel=1e-6)
    assert from_ref["protocol"]["reference_protocol"]["real_sha256"] == real["protocol"]["real_sha256"]
    assert from_ref["protocol"]["reference_protocol"]["num_samples"] == 1797
    with pytest.raises(SystemExit) as e:  # a reference holds no real features: no KID
        evaluate_main([str(digit_run), "--ref", str(ref), "--metrics", "fid,kid"])
    assert e.value.code == 2


def test_a_checkpoint_alone_needs_a_reference_and_then_gives_the_same_fid(digit_run, tmp_path):
    import shutil

    ckpt = tmp_path / "elsewhere"
    shutil.copytree(digit_run / "checkpoints" / "last", ckpt)
    with pytest.raises(SystemExit) as e:
        evaluate_main([str(ckpt), "--num-samples", "100"])
    assert e.value.code == 2
    ref = tmp_path / "ref.npz"
    evaluate([digit_run, "--num-samples", 100, "--save-ref", ref, "--metrics", "fid", "--name", "inrun"])
    evaluate([ckpt, "--num-samples", 100, "--ref", ref, "--metrics", "fid", "--name", "alone"])
    alone = json.loads((tmp_path / "eval_alone.json").read_text())["metrics"]["eval/fid"]["mean"]
    assert alone == pytest.approx(json.loads((digit_run / "eval_inrun.json").read_text())["metrics"]["eval/fid"]["mean"], rel=1e-6)


def test_truncation_keeps_latents_within_the_threshold_and_is_recorded(ring_run, capsys):
    from hydra.utils import instantiate

    from gan_platform.evaluation.reference import ReferenceStats, frechet_distance

    g = torch.Generator().manual_seed(0)
    z = truncated_noise(2000, 16, 0.5, g)
    assert z.abs().max() <= 0.5 and z.std() < 0.35  # a normal cut at +-0.5: std 0.28 (its law: test_metric_values.py)
    plain = truncated_noise(2000, 16, None, torch.Generator().manual_seed(0))
    assert torch.equal(truncated_noise(2000, 16, 100.0, torch.Generator().manual_seed(0)), plain)
    evaluate([ring_run, "--num-samples", 300, "--truncation", 0.5, "--name", "psi"])
    evaluate([ring_run, "--num-samples", 300, "--name", "plain"])
    psi = json.loads((ring_run / "eval_psi.json").read_text())
    untruncated = json.loads((ring_run / "eval_plain.json").read_text())
    assert psi["protocol"]["truncation"] == 0.5 and untruncated["protocol"]["truncation"] is None
    assert {"collapse/modes", "collapse/high_quality"} <= set(psi["metrics"])
    trained = load_generator(ring_run)
    real = ReferenceStats.of(instantiate(trained.cfg.dataset).all()[0])   # the points are the features
    for report, threshold in ((psi, 0.5), (untruncated, None)):  # each FID is that of G(z) for z of its law
        samples = trained.sample(300, z=trained.noise(300, 0, threshold))
        assert report["metrics"]["eval/fid"]["mean"] == pytest.approx(frechet_distance(real, ReferenceStats.of(samples)), rel=1e-6)
    spread = [trained.sample(2000, seed=1, truncation=t).std(0).mean().item() for t in (0.3, None)]
    assert spread[0] < spread[1]  # truncation trades diversity away


def test_the_inception_score_is_refused_for_points_in_one_sentence(ring_run, capsys):
    with pytest.raises(SystemExit) as e:
        evaluate_main([str(ring_run), "--metrics", "is"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and "2-D points" in err and "drop 'is'" in err and err.count(". ") == 0


def _torchmetrics_fid(weights, real_u8, fake_u8):
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

    network = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                 feature_extractor_weights_path=str(weights), antialias=False)
    fid = FrechetInceptionDistance(feature=network)
    fid.update(real_u8, real=True)
    fid.update(fake_u8, real=False)
    return float(fid.compute())


@pytest.mark.slow
def test_inception_path_gives_fid_and_is_with_its_splits_and_both_resizes(digit_run, tmp_path):
    """Each resize's FID is torchmetrics' FrechetInceptionDistance on the same images through the same
    weights file: as they are (TF-1 bilinear inside the network), or first resized as clean-fid does."""
    from hydra.utils import instantiate

    from gan_platform.evaluation.image_sets import to_uint8
    from gan_platform.evaluation.resize import resize_clean

    weights = inception_shaped_weights(tmp_path / INCEPTION_FILE)
    common = [digit_run, "--num-samples", 3, "--num-real", 3, "--features", "inception", "--inception-weights", weights,
              "--is-splits", 2, "--metrics", "fid,is"]
    evaluate([*common, "--name", "tm"])
    evaluate([*common, "--resize", "clean", "--name", "clean"])
    tm, clean = (json.loads((digit_run / f"eval_{n}.json").read_text()) for n in ("tm", "clean"))
    assert set(tm["metrics"]) == {"eval/fid", "eval/is", "eval/is_std"}
    assert tm["protocol"]["is_splits"] == 2 and "population" in tm["protocol"]["is_std"]
    assert best_mode("eval/is") == "max"  # a best checkpoint by IS keeps the highest
    assert (tm["protocol"]["resize_mode"], clean["protocol"]["resize_mode"]) == ("torchmetrics", "clean")
    trained = load_generator(digit_run)
    rgb = lambda x: to_uint8(x).expand(-1, 3, -1, -1).contiguous()  # noqa: E731 - grey digits as Inception sees them
    real = rgb(instantiate(trained.cfg.dataset).all(3)[0])
    fake = rgb(trained.sample(3, torch.arange(3) % 10, z=trained.noise(3, 0)))
    assert tm["metrics"]["eval/fid"]["mean"] == pytest.approx(_torchmetrics_fid(weights, real, fake), rel=1e-4)
    clean_fid = _torchmetrics_fid(weights, resize_clean(real, 299), resize_clean(fake, 299))
    assert clean["metrics"]["eval/fid"]["mean"] == pytest.approx(clean_fid, rel=1e-4)


@pytest.mark.slow
def test_two_processes_split_the_sampling_and_give_the_one_process_numbers(digit_run, tmp_path):
    args = [str(digit_run), "--num-samples", "101", "--seeds", "2", "--metrics", "fid,kid,prdc,class_accuracy"]
    evaluate([*args, "--name", "one_process"])
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           "-m", "gan_platform.evaluate", *args, "--name", "two_processes"]
    proc = subprocess.run(cmd, env=cli_env({"ACCELERATE_USE_CPU": "1", "CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(tmp_path)}),
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (json.loads((digit_run / f"eval_{n}.json").read_text()) for n in ("one_process", "two_processes"))
    assert two["protocol"]["num_processes"] == 2 and one["protocol"]["num_processes"] == 1
    assert two["protocol"]["num_fake_used"] == 101
    assert set(one["metrics"]) == set(two["metrics"])
    for key, value in one["metrics"].items():
        assert two["metrics"][key]["values"] == pytest.approx(value["values"], rel=1e-5, abs=1e-6), key
