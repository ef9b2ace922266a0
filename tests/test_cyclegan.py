"""CycleGAN: cycle loss, image pool, the step order, short real runs, exact resume, the translate CLI."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY, compose, run_cli, train
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.errors import ConfigError, UserError
from gan_platform.evaluation.digit_classifier import load_digit_classifier
from gan_platform.evaluation.features import INCEPTION_FILE
from gan_platform.runs.rundir import read_metrics
from gan_platform.tasks.cyclegan import cycle_loss
from gan_platform.tasks.image_pool import ImagePool
from helpers.evaluation import inception_shaped_weights

# A tiny CycleGAN on the embedded digit-style pair.
SMALL = ["+experiment=cyclegan", *TINY, "trainer.batch_size=8", "trainer.grid_size=12",
         "model.generator.width=8", "model.generator.blocks=1", "model.generator.downsample=1",
         "model.discriminator.width=8", "trainer.lr_decay=none"]


def test_cycle_loss_l2_and_l1_on_known_values():
    original = torch.zeros(1, 1, 2, 2)
    reconstruction = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    assert cycle_loss(reconstruction, original, "l2").item() == pytest.approx((1 + 1 + 4 + 0) / 4)
    assert cycle_loss(reconstruction, original, "l1").item() == pytest.approx((1 + 1 + 2 + 0) / 4)
    with pytest.raises(ConfigError, match="task.cycle.norm"):
        cycle_loss(reconstruction, original, "l3")


@pytest.mark.parametrize("overrides, message", [
    (["+experiment=cyclegan", "task.cycle.norm=l3"], "task.cycle.norm must be l1 or l2"),
    (["+experiment=cyclegan", "task.cycle.weight=-1"], "task.cycle.weight must be zero or more"),
    (["+experiment=cyclegan", "dataset=digits"], "needs an unpaired two-style dataset"),
    (["model=cyclegan"], "model=cyclegan holds image-to-image networks"),
    (["+experiment=cyclegan", "model.discriminator.layers=4"], "lower model.discriminator.layers"),
])
def test_bad_cyclegan_configs_are_one_sentence(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        train(tmp_path, overrides + TINY)
    assert "\n" not in str(error.value)


def test_cyclegan_networks_refuse_non_square_images_with_the_fix():
    from gan_platform.models.cyclegan import PatchDiscriminator, ResnetGenerator

    for build in (lambda: ResnetGenerator((3, 16, 8)), lambda: PatchDiscriminator((3, 16, 8))):
        with pytest.raises(ConfigError, match=r"model=cyclegan needs square images \(C, H, H\); this dataset gives "
                                              r"samples of shape \(3, 16, 8\): give both styles image datasets cropped square"):
            build()


def test_image_pool_fills_then_swaps_half_the_time_and_resumes_exactly():
    assert torch.equal(ImagePool(0).query(torch.ones(3, 1)), torch.ones(3, 1))
    pool = ImagePool(4, seed=1)
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 4  # filling: shown as they come
    twin = ImagePool(4)
    twin.load_state_dict(pool.state_dict())
    from_history = 0
    for i in range(200):
        new = torch.full((1, 1), 100.0 + i)
        shown = pool.query(new)
        assert torch.equal(shown, twin.query(new))  # the same draws after a state round trip
        stored = sorted(x.item() for x in pool.images)
        if shown.item() != new.item():
            from_history += 1
            assert new.item() in stored and shown.item() not in stored  # swapped: the old one leaves
        assert len(pool) == 4
    assert 70 <= from_history <= 130  # probability 1/2


def test_an_image_pool_saved_with_a_torch_generator_still_loads():
    """Pools once drew from a torch generator; such a checkpoint continues with its images and a
    Python generator seeded from that state: two loads of it draw alike, another state draws otherwise."""
    images = torch.arange(4.0).view(4, 1)
    legacy = {"size": 4, "images": images, "generator": torch.Generator().manual_seed(3).get_state()}
    other = {**legacy, "generator": torch.Generator().manual_seed(4).get_state()}
    pools = [ImagePool(4), ImagePool(4), ImagePool(4)]
    for pool, state in zip(pools, (legacy, legacy, other)):
        pool.load_state_dict(state)
    assert torch.equal(torch.stack(pools[0].images), images)
    draws = [[pool.query(torch.full((1, 1), 100.0 + i)).item() for i in range(40)] for pool in pools]
    assert draws[0] == draws[1] != draws[2]


def _small_task():
    """The SMALL config, its CycleGAN task built as a run builds it, and a batch of 4 (a, b)."""
    from gan_platform.run import build_dataset, build_task, make_accelerator

    cfg = compose(SMALL)
    acc = make_accelerator(cfg)
    dataset = build_dataset(cfg, acc)
    return cfg, build_task(cfg, dataset, acc), dataset.sample(4, torch.Generator(device=dataset.device).manual_seed(0))


def test_d_step_trains_on_the_last_g_steps_batch(tmp_path):
    cfg, task, (a, b) = _small_task()
    nan = torch.full_like(a, float("nan"))
    task.g_step(a, b)
    assert task.kept is not None and torch.equal(task.kept["a"], a)
    logs = task.d_step(nan, nan)  # kept batch and fakes: the paper's G step then D step on one batch
    assert all(torch.isfinite(v) for v in logs.values()) and task.kept is None
    logs = task.d_step(nan, nan)  # nothing kept (a second D step): it translates its own batch
    assert not torch.isfinite(logs["d_loss"])


def test_health_signals_are_measured_only_when_asked_and_count_every_patch(tmp_path):
    cfg, task, (a, b) = _small_task()
    assert "g_grad_norm" not in task.g_step(a, b) and "d_grad_norm" not in task.d_step(a, b)
    task.measure_health = True
    g_logs = task.g_step(a, b)
    g_norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for net in (task.g_a2b, task.g_b2a)
                                                 for p in net.parameters() if p.grad is not None]))
    assert g_logs["g_grad_norm"].item() == pytest.approx(g_norm.item(), rel=1e-5) and g_norm > 0
    kept = dict(task.kept)  # the next D step trains on this batch and these fakes
    task.pools = {k: ImagePool(0, 0) for k in task.pools}  # no pool: D sees exactly the kept fakes
    with torch.no_grad():  # D's scores before its step, every PatchGAN patch counted
        real = torch.cat([task.d_a(kept["a"]).flatten(), task.d_b(kept["b"]).flatten()])
        fake = torch.cat([task.d_a(kept["fake_a"]).flatten(), task.d_b(kept["fake_b"]).flatten()])
    d_logs = task.d_step(a, b)
    assert real.numel() > 8 and cfg.loss.name == "least_squares"  # many patches an image; threshold 0.5
    assert d_logs["d_acc_real"].item() == pytest.approx((real > 0.5).float().mean().item())
    assert d_logs["d_acc_fake"].item() == pytest.approx((fake < 0.5).float().mean().item())
    d_norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for net in (task.d_a, task.d_b) for p in net.parameters()]))
    assert d_logs["d_grad_norm"].item() == pytest.approx(d_norm.item(), rel=1e-5) and d_norm > 0


def test_the_generators_adversarial_term_is_the_papers_least_squares(tmp_path):
    cfg, task, _ = _small_task()
    scores = torch.tensor([0.0, 3.0])  # (s - 1)^2 = [1, 4]: E = 2.5, LSGAN's half of it 1.25
    assert cfg.loss.name == "least_squares" and task.loss.g(None, scores).item() == pytest.approx(2.5)
    assert task.loss.d(torch.ones(2), scores).item() == pytest.approx(0.5 * (0 + 9) / 2)  # D keeps 1/2


def test_short_run_beats_doing_nothing_with_the_right_metrics(tmp_path):
    summary = train(tmp_path, SMALL + ["task.cycle.norm=l2", "trainer.steps=40", "trainer.log_every=20", "trainer.sample_every=40",
                                       "eval.every=20"])
    assert summary["status"] == "finished"
    evals = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "eval/cycle_error" in r]
    assert [r["step"] for r in evals] == [20, 40]
    final = evals[-1]
    for key in ("eval/fid_a2b", "eval/fid_b2a", "eval/cycle_error", "eval/label_preservation",
                "eval/label_preservation_a2b", "eval/label_preservation_b2a", "eval/translation_error",
                "eval/identity_error", "eval/translation_error_a2b", "eval/translation_error_b2a"):
        assert np.isfinite(final[key]), key
    assert final["eval/translation_error"] < 0.6 * final["eval/identity_error"]
    assert final["eval/identity_error_a2b"] == pytest.approx(evals[0]["eval/identity_error_a2b"])  # fixed bar
    assert final["eval/cycle_error"] < evals[0]["eval/cycle_error"] + 0.05
    train_keys = {k for r in read_metrics(tmp_path / "metrics.jsonl") for k in r}
    assert {"train/d_loss", "train/g_loss", "train/g_cycle", "train/d_a", "train/d_b", "train/g_grad_norm",
            "train/d_grad_norm", "train/d_acc_real", "train/d_acc_fake"} <= train_keys  # the health signals
    protocol = json.loads((tmp_path / "summary.json").read_text())["protocol"]
    # the shared extractor (evaluation/features.py) and its hash, under the GAN protocol's keys
    assert protocol["extractor"] == "digits" and protocol["num_features"] == 64 and protocol["samples_a"] == 180
    assert protocol["weights_sha256"] == load_digit_classifier(16).sha256 and "style_views" in protocol
    raw = torch.load(tmp_path / "samples" / "step_000040.pt", weights_only=True)
    assert raw["samples"].shape == (12, 3, 16, 16)  # 6 rows of 2: A, G1(A), G2(G1(A)), B, G2(B), G1(G2(B))
    assert torch.equal(raw["samples"][:2], raw["a"]) and torch.equal(raw["samples"][6:8], raw["b"])
    assert Image.open(tmp_path / "samples" / "step_000040.png").size[0] >= 256


def _state(run_dir):
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    return state


def test_resume_continues_bit_for_bit_pools_included(tmp_path):
    """Stop at 3, resume to 6: the same networks, pools and logs as 6 straight (l1 cycle, identity loss on).
    Bit for bit on the CPU; on a GPU cuDNN's convolution gradients are not deterministic (atomic adds),
    so there it is equal to float rounding."""
    same = torch.equal if not torch.cuda.is_available() else (lambda x, y: torch.allclose(x, y, rtol=1e-3, atol=1e-5))
    near = (lambda x, y: x == y) if not torch.cuda.is_available() else (lambda x, y: x == pytest.approx(y, rel=1e-3))
    common = SMALL + ["task.pool_size=6", "task.identity_weight=1", "task.cycle.norm=l1", "seed=5",
                      "trainer.log_every=3", "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.every=0"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(straight, common + ["trainer.steps=6"])
    train(stopped, common + ["trainer.steps=3"])
    resumed = train(stopped, common + ["trainer.steps=6", "trainer.resume=auto"])
    assert resumed["status"] == "finished" and resumed["step"] == 6
    sa, sb = _state(straight), _state(stopped)
    assert set(sa["modules"]) == {"generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b"}
    for net in sa["modules"]:
        for k in sa["modules"][net]:
            assert same(sa["modules"][net][k], sb["modules"][net][k]), (net, k)
    assert len(sa["task_processes"]) == 1 and "pool_a" not in sa["task"]  # one process, its own pools
    pa, pb = sa["task_processes"][0], sb["task_processes"][0]
    for pool in ("pool_a", "pool_b"):
        assert len(pa[pool]["images"]) == 6 and same(pa[pool]["images"], pb[pool]["images"])
    assert sa["schedulers"] == sb["schedulers"]
    ma, mb = list(read_metrics(straight / "metrics.jsonl")), list(read_metrics(stopped / "metrics.jsonl"))
    logged = lambda records: [(r["step"], r["train/g_loss"], r["train/d_loss"]) for r in records if "train/g_loss" in r]  # noqa: E731
    flat = lambda rows: [v for row in rows for v in row]  # noqa: E731
    assert [s for s, *_ in logged(mb)] == [3, 6] and near(flat(logged(ma)), flat(logged(mb)))
    assert ma[-1]["step"] == mb[-1]["step"] == 6 and near(ma[-1]["eval/translation_error"], mb[-1]["eval/translation_error"])


def test_translate_cli_matches_the_runs_own_translations(tmp_path, capsys):
    run_dir = tmp_path / "run"
    overrides = SMALL + ["trainer.steps=2", "trainer.sample_every=2", "eval.every=0"]
    train(run_dir, overrides)  # writes .hydra/config.yaml, as a CLI run does
    raw = torch.load(run_dir / "samples" / "step_000002.pt", weights_only=True)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, image in enumerate(raw["a"]):
        Image.fromarray(((image + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).save(inputs / f"digit{i}.png")
    Image.fromarray(((raw["a"][0] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).save(inputs / "again.jpg", quality=100)
    (inputs / "notes.png").write_text("not an image")
    out = tmp_path / "out"
    res = run_cli(["--direction", "a2b", "--input", str(inputs), "--out", str(out), str(run_dir)], cwd=tmp_path,
                  module="gan_platform.translate")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["again.png", "digit0.png", "digit1.png"]
    for i in range(2):
        written = torch.from_numpy(np.array(Image.open(out / f"digit{i}.png"))).permute(2, 0, 1).float() / 127.5 - 1
        assert (written - raw["samples"][2 + i]).abs().max() <= 1.01 / 127.5  # row 2: G1(A)
    from gan_platform.translate import main as translate_main

    with pytest.raises(SystemExit) as stop:
        translate_main([str(tmp_path / "nowhere"), "--input", str(inputs), "--out", str(out)])
    assert stop.value.code == 2 and "is not a run dir" in capsys.readouterr().err


def test_horse2zebra_bundle_runs_on_small_folders_with_inception_fid_and_its_hash(tmp_path):
    cfg = compose(["+experiment=horse2zebra"])
    assert (cfg.dataset.resolution, cfg.dataset.load_size, cfg.dataset.crop, cfg.task.cycle.norm) == (256, 286, "random", "l1")
    assert cfg.eval.features == "inception"  # photos: FID on Inception features or no run
    (tmp_path / "weights").mkdir()
    weights = inception_shaped_weights(tmp_path / "weights" / INCEPTION_FILE)
    assert (cfg.model.generator.blocks, cfg.model.discriminator.layers, cfg.trainer.batch_size) == (9, 3, 1)
    root = tmp_path / "horse2zebra"
    rng = np.random.default_rng(0)
    for d in ("trainA", "trainB", "testA", "testB"):
        (root / d).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(root / d / f"{i}.jpg")
    summary = train(tmp_path / "run", ["+experiment=horse2zebra", *TINY, f"dataset.root={root}", "dataset.resolution=16",
                                       "dataset.load_size=20", "model.generator.width=4", "model.generator.blocks=1",
                                       "model.discriminator.width=4", "model.discriminator.layers=2",
                                       "trainer.steps=2", "trainer.sample_every=0", "trainer.log_every=1",
                                       f"eval.inception_weights={weights}"])
    assert summary["status"] == "finished"
    assert summary["final"]["eval/cycle_error"] > 0 and "eval/label_preservation" not in summary["final"]
    assert np.isfinite(summary["final"]["eval/fid_a2b"]) and np.isfinite(summary["final"]["eval/fid_b2a"])
    p = summary["protocol"]
    assert (p["extractor"], p["num_features"], p["weights_file"]) == ("inception", 2048, str(weights))
    assert p["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest() and p["samples_a"] == 3


@pytest.mark.slow
def test_cyclegan_between_photo_folders_without_inception_reports_no_fid_but_the_cycle_error(tmp_path, monkeypatch):
    """A CycleGAN run between two folders of photos, eval.features=auto and no Inception file: a
    digit classifier's FID of photos (once reported as eval/fid_a2b 1137) is no longer reported."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    root = tmp_path / "photos"
    rng = np.random.default_rng(1)
    for d in ("trainA", "trainB"):
        (root / d).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / d / f"{i}.png")
    summary = train(tmp_path / "run", ["+experiment=horse2zebra", *TINY, "eval.features=auto", f"dataset.root={root}",
                                       "dataset.resolution=16", "dataset.load_size=16", "model.generator.width=4",
                                       "model.generator.blocks=1", "model.discriminator.width=4",
                                       "model.discriminator.layers=2", "trainer.steps=2", "trainer.sample_every=0"])
    final = summary["final"]
    assert summary["status"] == "finished" and final["eval/cycle_error"] > 0
    assert "eval/fid_a2b" not in final and "eval/fid_b2a" not in final
    assert summary["protocol"]["extractor"] == "identity" and INCEPTION_FILE in summary["protocol"]["fid"]


@pytest.mark.parametrize("weights", ["missing", "wrong network"])
def test_cyclegan_stops_on_bad_inception_weights_with_the_gan_runs_sentence(tmp_path, weights):
    """One way to find and check the Inception file: a CycleGAN run and a GAN run given the same
    missing (not downloadable) or wrong file stop before training with the same sentence."""
    path = tmp_path / "weights" / INCEPTION_FILE
    if weights == "wrong network":
        path.parent.mkdir()
        torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    inception = ["eval.features=inception", f"eval.inception_weights={path}", "trainer.steps=2",
                 f"eval.inception_url={(tmp_path / 'nowhere.pth').as_uri()}"]
    said = {}
    for task, overrides in (("gan", ["dataset=digits", "model=dcgan", *TINY]), ("cyclegan", SMALL)):
        with pytest.raises(UserError) as error:
            train(tmp_path / task, overrides + inception)
        said[task] = str(error.value)
        assert not (tmp_path / task / "checkpoints").exists() and not (tmp_path / task / "metrics.jsonl").exists()
    assert said["cyclegan"] == said["gan"] and "\n" not in said["gan"] and INCEPTION_FILE in said["gan"]
    start = {"missing": "The FID Inception weights are missing", "wrong network": f"{path} is not torch-fidelity's Inception"}
    assert said["gan"].startswith(start[weights])
