"""`model=stylegan2` through the platform: it trains on the bundled digits at 32 x 32 with the plain
GAN task, resumes bit for bit, runs on two CPU processes, a checkpoint alone rebuilds G, and
`gan_platform.sample` / `gan_platform.evaluate` truncate in W (`--truncation`) and mix styles
(`--style-mix`). The networks' own properties: test_stylegan2.py."""

import json
import shutil

import pytest
import torch

from helpers import TINY, train
from gan_platform.errors import UserError
from gan_platform.evaluate import main as evaluate_main
from gan_platform.models.dcgan import DCGANGenerator
from gan_platform.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.generator import TrainedGenerator, load_generator
from gan_platform.runs.rundir import read_metrics
from gan_platform.sample import main as sample_main

# A tiny StyleGAN2 (8 channels at most, W of 16, 2 mapping layers) on the digits at 32 x 32, with the
# non-saturating loss and no regulariser.
SG2 = [*TINY, "+experiment=nsgan", "model=stylegan2", "dataset.resolution=32", "model.z_dim=16",
       "model.generator.w_dim=16", "model.generator.mapping_layers=2", "model.generator.channel_base=128",
       "model.generator.channel_max=8", "model.discriminator.channel_base=128", "model.discriminator.channel_max=8",
       "model.discriminator.mapping_layers=2", "trainer.log_every=1", "trainer.sample_every=0", "eval.every=0",
       "eval.num_samples=100", "eval.features=identity"]


@pytest.fixture(scope="module")
def sg2_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("stylegan2") / "run"
    summary = train(run_dir, [*SG2, "trainer.steps=3", "trainer.ema.decay=0.9", "seed=2"])
    assert summary["status"] == "finished" and summary["step"] == 3
    return run_dir


def _raw_samples(args: list, tmp_path, name: str) -> torch.Tensor:
    assert sample_main([str(a) for a in args] + ["--raw", str(tmp_path / f"{name}.pt"), "--out", str(tmp_path / f"{name}.png")]) == 0
    return torch.load(tmp_path / f"{name}.pt", weights_only=True)["samples"]


@pytest.mark.slow
def test_stylegan2_trains_conditionally_and_resumes_bit_for_bit(tmp_path):
    """Stop at step 2, resume to 4: every parameter and buffer (W's average, the fixed noise, G's
    moving average) and every logged loss as 4 steps straight; random noise inputs included."""
    common = [*SG2, "task.conditional=true", "trainer.ema.decay=0.9", "seed=7"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(straight, common + ["trainer.steps=4"])
    assert train(stopped, common + ["trainer.steps=2"])["step"] == 2
    assert train(stopped, common + ["trainer.steps=4", "trainer.resume=auto"])["step"] == 4
    a, b = (load_checkpoint(run / "checkpoints" / "last")[0] for run in (straight, stopped))
    assert set(a["modules"]) == {"generator", "generator_ema", "discriminator"}
    for net, weights in a["modules"].items():
        for k, v in weights.items():
            assert torch.equal(v, b["modules"][net][k]), (net, k)
    w_avg = a["modules"]["generator"]["mapping.w_avg"]
    assert w_avg.abs().sum() > 0 and "mapping.embed.weight" in a["modules"]["generator"]  # tracked; a class embedding
    assert "mapping.embed.weight" in a["modules"]["discriminator"]                      # D's projection
    assert a["model_args"]["generator"]["_target_"].endswith("StyleGAN2Generator") and a["model_args"]["generator"]["num_classes"] == 10
    losses = [[r["train/d_loss"] for r in read_metrics(run / "metrics.jsonl") if "train/d_loss" in r] for run in (straight, stopped)]
    assert len(losses[0]) == 4 and losses[0] == losses[1]


def test_a_checkpoint_alone_rebuilds_g_with_its_w_average(sg2_run, tmp_path):
    alone = tmp_path / "elsewhere"
    shutil.copytree(sg2_run / "checkpoints" / "last", alone)
    state, _ = load_checkpoint(alone)
    trained, in_run = load_generator(alone), load_generator(sg2_run)
    G = trained.generator
    assert isinstance(G, StyleGAN2Generator) and trained.run_dir is None and trained.network == "generator_ema"
    assert G.out_shape == (1, 32, 32) and G.w_dim == 16 and G.num_ws == 8 and trained.has_w
    assert torch.equal(G.mapping.w_avg, state["modules"]["generator_ema"]["mapping.w_avg"]) and G.mapping.w_avg.abs().sum() > 0
    assert torch.equal(trained.sample(5, seed=3), in_run.sample(5, seed=3))
    assert torch.equal(trained.sample(5, seed=3), trained.sample(5, seed=3))  # the fixed noise in eval: one image per z


def test_sample_truncation_0_gives_one_image_and_1_changes_nothing(sg2_run, tmp_path):
    average = _raw_samples([sg2_run, "--n", "6", "--truncation", "0"], tmp_path, "psi0")
    assert average.shape == (6, 1, 32, 32) and torch.equal(average, average[:1].expand_as(average))
    plain = _raw_samples([sg2_run, "--n", "6"], tmp_path, "plain")
    assert torch.equal(_raw_samples([sg2_run, "--n", "6", "--truncation", "1"], tmp_path, "psi1"), plain)
    assert plain.std(dim=0).mean() > 1e-4  # without truncation the latents do differ
    half = _raw_samples([sg2_run, "--n", "6", "--truncation", "0.5"], tmp_path, "psi05")
    trained = load_generator(sg2_run)
    assert torch.allclose(half, trained.generator(trained.noise(6, 0), psi=0.5), atol=1e-6)  # the z drawn plainly, truncated in W
    assert torch.equal(trained.noise(6, 0, truncation=0.5), trained.noise(6, 0)) and trained.truncation_space == "W"


def test_style_mix_takes_layers_from_k_on_from_the_next_seeds_latents(sg2_run, tmp_path, capsys):
    mixed = _raw_samples([sg2_run, "--n", "4", "--seed", "5", "--style-mix", "3"], tmp_path, "mix")
    trained = load_generator(sg2_run)
    with torch.no_grad():
        expected = trained.generator(trained.noise(4, 5), mix_z=trained.noise(4, 6), cutoff=3)
    assert torch.allclose(mixed, expected, atol=1e-6) and not torch.allclose(mixed, trained.sample(4, seed=5))
    with pytest.raises(SystemExit) as e:
        sample_main([str(sg2_run), "--style-mix", "9", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and "this generator's 8 layers (0..8)" in err and err.count(". ") == 0
    dcgan = TrainedGenerator(DCGANGenerator((1, 16, 16), z_dim=4, width=4).eval(), None, None, tmp_path, 0, (1, 16, 16), 0, None, 4)
    with pytest.raises(UserError, match="Style mixing needs a generator with a W space") as info:
        dcgan.sample(2, mix_z=torch.randn(2, 4), cutoff=1)
    assert str(info.value).count(". ") == 0 and dcgan.truncation_space == "z"


def test_evaluate_records_a_truncation_in_w(sg2_run):
    assert evaluate_main([str(sg2_run), "--num-samples", "40", "--metrics", "fid", "--features", "digits", "--num-real", "100",
                          "--truncation", "0.5", "--name", "psi"]) == 0
    protocol = json.loads((sg2_run / "eval_psi.json").read_text())["protocol"]
    assert (protocol["truncation"], protocol["truncation_space"]) == (0.5, "W")


def test_the_config_builds_the_cpu_sized_default():
    from helpers import compose
    from gan_platform.config import validate
    from gan_platform.errors import instantiate
    from gan_platform.tasks.gan_build import network_args

    cfg = compose(["+experiment=nsgan", "model=stylegan2"])
    validate(cfg)
    args = network_args(cfg, (1, 16, 16))
    G, D = instantiate(args["generator"]), instantiate(args["discriminator"])
    assert isinstance(G, StyleGAN2Generator) and isinstance(D, StyleGAN2Discriminator)
    assert G.mapping.w_avg_decay == 0.995 and len(G.mapping.layers) == 8 and G.mapping.layers[0].weight_gain == pytest.approx(0.01 / 8)
    assert [b.conv1.weight.shape[0] for b in G.synthesis.blocks] == [64, 64, 64] and G.style_mixing == 0.9
    assert D.mbstd.group_size == 4 and all(b.skip is not None for b in D.blocks)


@pytest.mark.slow
def test_two_cpu_processes_train_one_stylegan2_run(tmp_path):
    """`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m gan_platform model=stylegan2 ...`
    (the launcher of tests/helpers/launch.py): one run dir, two ranks that drew different data, and
    replicas bit-identical at the end, W's average (each rank tracks its own batches; the trainer
    averages float buffers over the ranks) and G's moving average included."""
    from helpers.launch import finish, launch, only_run_dir

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code, out = finish(launch([*SG2, "name=stylegan2_two", "trainer.steps=3", "trainer.ema.decay=0.9"], tmp_path, tmp))
    assert code == 0, out[-3000:]
    run_dir = only_run_dir(tmp_path, "stylegan2_two")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 3 and summary["num_processes"] == 2
    assert summary["replicas"]["in_sync"] is True and len(set(summary["replicas"]["sha256"])) == 1
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    assert len(state["rng"]) == 2 and not state["rng"][0]["data"].equal(state["rng"][1]["data"])
    assert state["modules"]["generator"]["mapping.w_avg"].abs().sum() > 0
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/d_loss" in r] == [1, 2, 3]
