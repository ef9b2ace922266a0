"""BigGAN's networks (models/biggan.py, models/self_attention.py) and orthogonal regularisation
(losses/orthogonal.py), proven by the paper's properties; `model=biggan` through the platform."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from helpers import TINY, train
from gan_platform.errors import ConfigError
from gan_platform.losses import off_diagonal_gram, orthogonal_regularisation, orthogonal_weights
from gan_platform.models.biggan import BigGANDiscriminator, BigGANGenerator, ConditionalBatchNorm, UpBlock
from gan_platform.models.self_attention import SelfAttention

LAYERS = (nn.Conv2d, nn.Linear)


def _generator(**kw) -> BigGANGenerator:
    args = dict(out_shape=(1, 32, 32), z_dim=24, width=2, num_classes=5, shared_dim=6, attention=16)
    return BigGANGenerator(**{**args, **kw})


def _block_inputs(G: BigGANGenerator, z: torch.Tensor, y) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(h, c) as each up block of G receives them."""
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, args: seen.append(tuple(a.clone() for a in args)))
             for b in G.blocks if isinstance(b, UpBlock)]
    with torch.no_grad():
        G(z, y)
    for h in hooks:
        h.remove()
    return seen


def test_self_attention_is_the_identity_at_init_and_sits_at_the_chosen_side():
    torch.manual_seed(0)
    block = SelfAttention(16)
    x = torch.randn(3, 16, 8, 8)
    assert block.gain.item() == 0.0 and torch.equal(block(x), x)
    with torch.no_grad():
        block.gain.fill_(0.5)
    assert (block(x) - x).abs().max() > 1e-3  # once the gain moves, the attention's output is mixed in
    G, D = _generator(attention=16), BigGANDiscriminator((1, 32, 32), width=4, attention=8)
    sides = {}
    for name, net in (("G", G), ("D", D)):
        (attention,) = [m for m in net.modules() if isinstance(m, SelfAttention)]
        attention.register_forward_hook(
            lambda m, args, out, name=name: sides.update({name: (args[0].shape[-1], torch.equal(out, args[0]))}))
    D(G(torch.randn(4, 24), torch.arange(4)), torch.arange(4))
    assert sides == {"G": (16, True), "D": (8, True)}


def test_conditional_batchnorm_gives_two_classes_different_outputs_from_the_same_z():
    torch.manual_seed(0)
    bn = ConditionalBatchNorm(4, cond_dim=3)
    h, c = torch.randn(6, 4, 5, 5), torch.randn(6, 3)
    normalised = (h - h.mean((0, 2, 3), keepdim=True)) / torch.sqrt(h.var((0, 2, 3), unbiased=False, keepdim=True) + bn.bn.eps)
    want = normalised * (1 + c @ bn.gain.weight.T)[:, :, None, None] + (c @ bn.bias.weight.T)[:, :, None, None]
    assert torch.allclose(bn(h, c), want, atol=1e-5)  # BN(h) * (1 + W_gain c) + W_bias c
    G = _generator().eval()
    z = torch.randn(1, 24).expand(2, -1)
    blocks = _block_inputs(G, z, torch.tensor([1, 2]))
    gains = [b.bn1.gain(c) for b, (_, c) in zip([b for b in G.blocks if isinstance(b, UpBlock)], blocks)]
    assert all((g[0] - g[1]).abs().max() > 1e-3 for g in gains)  # every block's gains differ by class
    x = G(z, torch.tensor([1, 2]))
    assert (x[0] - x[1]).abs().max() > 1e-3
    assert torch.equal(G(z, torch.tensor([1, 1]))[0], G(z, torch.tensor([1, 1]))[1])


@pytest.mark.parametrize("conditional", [True, False])
def test_each_chunk_of_z_reaches_the_output_only_through_its_own_block(conditional):
    torch.manual_seed(0)
    G = _generator(num_classes=5 if conditional else 0).eval()  # 3 up blocks at 32 x 32: 4 chunks of 6
    assert G.chunks == [6, 6, 6, 6] and G.project.in_features == 6
    assert [b.bn1.gain.in_features for b in G.blocks if isinstance(b, UpBlock)] == [6 + 6 * conditional] * 3
    y = torch.tensor([0, 3]) if conditional else None
    z = torch.randn(2, 24)
    before = _block_inputs(G, z, y)
    for k in range(4):
        moved = z.clone()
        moved[:, 6 * k:6 * (k + 1)] += 1.0
        after = _block_inputs(G, moved, y)
        for i, ((h0, c0), (h1, c1)) in enumerate(zip(before, after)):
            assert torch.equal(c0, c1) == (i != k - 1), (k, i)  # chunk k >= 1 conditions block k - 1 alone
            assert torch.equal(h0, h1) == (i < k), (k, i)  # and nothing upstream of it (chunk 0: the 4 x 4 input)
        assert (G(moved, y) - G(z, y)).abs().max() > 1e-4
    if conditional:  # the class reaches every block through the shared embedding
        other = _block_inputs(G, z, torch.tensor([1, 4]))
        assert all(not torch.equal(c0, c1) and torch.equal(c0[:, 6:], c1[:, 6:]) for (_, c0), (_, c1) in zip(before, other))


def test_latent_options_unequal_chunks_and_a_flat_z():
    assert _generator(out_shape=(1, 16, 16), z_dim=128).chunks == [43, 43, 42]  # 3 chunks at 16 x 16
    flat = _generator(hierarchical_z=False)
    assert flat.chunks is None and flat.project.in_features == 24
    assert [b.bn1.gain.in_features for b in flat.blocks if isinstance(b, UpBlock)] == [6] * 3  # the class alone
    plain = _generator(hierarchical_z=False, num_classes=0)  # unconditional, flat z: ordinary BatchNorms
    bns = [b.bn1 for b in plain.blocks if isinstance(b, UpBlock)]
    assert all(bn.gain is None and bn.bn.affine for bn in bns)
    assert plain(torch.randn(3, 24)).shape == (3, 1, 32, 32)


def test_orthogonal_penalty_is_zero_for_orthogonal_filters_and_a_hand_computation_otherwise():
    torch.manual_seed(0)
    conv = torch.empty(8, 4, 3, 3)
    nn.init.orthogonal_(conv)
    assert off_diagonal_gram(conv).item() == pytest.approx(0.0, abs=1e-10)
    scaled = conv * torch.arange(1.0, 9.0)[:, None, None, None]  # filters of other norms, still orthogonal
    assert off_diagonal_gram(scaled).item() == pytest.approx(0.0, abs=1e-8)  # norms are left free
    w = [[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]]  # three filters of two weights (rows)
    by_hand = sum(sum(a * b for a, b in zip(w[i], w[j])) ** 2 for i in range(3) for j in range(3) if i != j)
    assert by_hand == pytest.approx(2 * ((0.5 * 2 - 0.25) ** 2 + (-0.375 - 1.5) ** 2 + (-1.5 + 0.375) ** 2))
    layer = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w))
    penalty = orthogonal_regularisation(layer)
    assert penalty.item() == pytest.approx(1e-4 * by_hand, rel=1e-6)  # beta 1e-4 by default
    penalty.backward()  # the gradient 4 beta (w w^T ⊙ (1 - I)) w
    W = torch.tensor(w)
    assert torch.allclose(layer.weight.grad, 4e-4 * ((W @ W.T) * (1 - torch.eye(3))) @ W, rtol=1e-5)


def test_orthogonal_regularisation_covers_every_weight_matrix_of_g_but_the_shared_embedding():
    torch.manual_seed(0)
    G = _generator()
    weights = orthogonal_weights(G)
    layers = [m for m in G.modules() if isinstance(m, LAYERS)]
    # one matrix per convolution and linear layer (the stored weight under spectral norm); no embedding, no vector
    assert len(weights) == len(layers) and all(w.dim() >= 2 for w in weights)
    assert {id(m.parametrizations.weight.original) for m in layers} == {id(w) for w in weights}
    assert not any(w is G.shared.weight for w in weights)
    total = sum(off_diagonal_gram(m.parametrizations.weight.original).item() for m in layers)
    assert orthogonal_regularisation(G, beta=0.5).item() == pytest.approx(0.5 * total, rel=1e-5)


def test_spectral_norm_sits_on_every_convolution_and_linear_layer_of_g_and_d():
    torch.manual_seed(0)
    G = _generator()
    D = BigGANDiscriminator((1, 32, 32), width=4, num_classes=5, attention=16)
    for net, count in ((G, 1 + 3 * 7 + 4 + 1), (D, 4 * 2 + 2 + 4 + 1)):  # G: project, 3 x (4 cBN linears, 3 convs), attention, out
        layers = [m for m in net.modules() if isinstance(m, LAYERS)]
        assert len(layers) == count
        for m in layers:
            (kind,) = m.parametrizations.weight
            assert type(kind).__name__ == "_SpectralNorm", m
    assert type(D.head.embed.parametrizations.weight[0]).__name__ == "_SpectralNorm"  # the projection too
    assert not nn.utils.parametrize.is_parametrized(G.shared)  # a lookup table, left alone (models/biggan.py)
    # W / sigma(W) does not change when the stored W is scaled: neither do G and D (eval mode: fixed
    # BatchNorm statistics and power-iteration vectors), each of whose layers is normalised
    z, y = torch.randn(4, 24), torch.arange(4)
    G.eval(), D.eval()
    with torch.no_grad():
        before = D(G(z, y), y), G(z, y)
        for m in [m for net in (G, D) for m in net.modules() if isinstance(m, LAYERS)]:
            m.parametrizations.weight.original.mul_(10.0)
        after = D(G(z, y), y), G(z, y)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(before, after))
    plain = [m for net in (_generator(spectral_norm=False), BigGANDiscriminator((1, 32, 32), width=4, spectral_norm=False))
             for m in net.modules()]
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in plain)


def test_parameter_counts_at_studiogans_cifar10_setting():
    """StudioGAN's BigGAN on CIFAR-10 (src/configs/CIFAR10/BigGAN.yaml: z_dim 80, g_shared_dim 128,
    g_conv_dim 96, d_conv_dim 96, attention after G's 2nd and D's 1st block, i.e. at 16 x 16; hinge,
    projection D, SN in G and D). Its training log
    logs/CIFAR10/BigGAN-train-2021_01_15_14_48_48.log (POSTECH-CVLab/PyTorch-StudioGAN, commit
    947b35e9835b67860fdce44d337f6d7fee7c8db3) prints "Number of parameters: 9416196" for G and
    "Number of parameters: 2415170" for D. The brief allows 1%; the layouts agree to the parameter."""
    G = BigGANGenerator((3, 32, 32), z_dim=80, width=96, num_classes=10, shared_dim=128, attention=16)
    D = BigGANDiscriminator((3, 32, 32), width=96, num_classes=10, attention=16)
    assert sum(p.numel() for p in G.parameters()) == 9_416_196
    assert sum(p.numel() for p in D.parameters()) == 2_415_170


@pytest.mark.parametrize("build, message", [
    (lambda: _generator(attention=64),
     "model.generator.attention=64 is not a side of BigGAN's generator at 32 x 32: choose one of 8, 16, 32, or 0 for none."),
    (lambda: BigGANDiscriminator((1, 32, 32), width=4, attention=32),
     "model.discriminator.attention=32 is not a side of BigGAN's discriminator at 32 x 32: choose one of 8, 16, or 0 for none."),
    (lambda: BigGANDiscriminator((1, 32, 32), width=2, attention=16), "needs at least 8 channels there and the width gives 4"),
    (lambda: _generator(out_shape=(1, 24, 24)),
     "model=biggan needs square images of side 8, 16, 32, 64, ...; got 24: set dataset.resolution."),
    (lambda: BigGANDiscriminator((1, 4, 4)), "model=biggan needs square images of side 8, 16, 32, 64, ...; got 4"),
    (lambda: _generator(out_shape=(3, 1024, 1024)), "model=biggan has BigGAN's layouts for sides 8 to 512; got 1024"),
    (lambda: _generator(z_dim=3), "model.z_dim=3 cannot give each of BigGAN's 4 latent chunks at side 32 a dimension"),
])
def test_bad_input_is_one_sentence_before_any_work(build, message):
    with pytest.raises(ConfigError) as e:
        build()
    assert message in str(e.value) and str(e.value).count(". ") == 0 and str(e.value).endswith(".")


CONDITIONAL_DIGITS = ["+experiment=hinge", *TINY, "model=biggan", "dataset=digits", "dataset.resolution=32",
                      "task.conditional=true", "model.generator.width=2", "model.discriminator.width=4", "model.z_dim=20",
                      "model.generator.shared_dim=8", "model.generator.attention=16", "trainer.log_every=1",
                      "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.enabled=false", "trainer.ema.decay=0.9",
                      "seed=5"]


def test_conditional_biggan_trains_on_digits_resumes_bit_for_bit_and_its_checkpoint_rebuilds_g(tmp_path):
    from gan_platform.runs.checkpoint import load_checkpoint
    from gan_platform.runs.generator import load_generator
    from gan_platform.runs.rundir import read_metrics

    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    summary = train(straight, [*CONDITIONAL_DIGITS, "trainer.steps=3"])
    assert summary["status"] == "finished" and summary["step"] == 3
    assert [r["step"] for r in read_metrics(straight / "metrics.jsonl") if "train/d_loss" in r] == [1, 2, 3]
    assert train(stopped, [*CONDITIONAL_DIGITS, "trainer.steps=1"])["step"] == 1
    assert train(stopped, [*CONDITIONAL_DIGITS, "trainer.steps=3", "trainer.resume=auto"])["step"] == 3
    a, _ = load_checkpoint(straight / "checkpoints" / "last")
    b, _ = load_checkpoint(stopped / "checkpoints" / "last")
    assert set(a["modules"]) == {"generator", "generator_ema", "discriminator"}
    for net in a["modules"]:  # weights, BatchNorm statistics and the power-iteration vectors alike
        for k, v in a["modules"][net].items():
            assert torch.equal(v, b["modules"][net][k]), (net, k)
    for side in ("generator", "discriminator"):  # and Adam's moments
        for i, moments in a["optimizers"][side]["state"].items():
            assert all(torch.equal(moments[k], b["optimizers"][side]["state"][i][k]) for k in ("exp_avg", "exp_avg_sq")), (side, i)
    assert a["model_args"]["generator"]["_target_"].endswith("BigGANGenerator") and a["model_args"]["generator"]["num_classes"] == 10
    trained = load_generator(straight)
    assert isinstance(trained.generator, BigGANGenerator) and trained.generator.chunks == [5, 5, 5, 5]
    labels = torch.arange(10)
    x = trained.sample(10, labels=labels, seed=1)
    assert x.shape == (10, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, trained.sample(10, labels=labels, seed=1)) and (x[0] - x[1]).abs().max() > 1e-4


def test_biggan_on_unlabelled_images_trains_unconditionally_and_a_conditional_run_is_refused(tmp_path):
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(6):
        Image.new("RGB", (12, 12), (40 * i, 20, 200 - 30 * i)).save(folder / f"{i}.png")
    common = ["+experiment=hinge", *TINY, "model=biggan", "dataset=image_folder", f"dataset.root={folder}",
              "dataset.resolution=8", "trainer.batch_size=4", "trainer.grid_size=4", "trainer.steps=1", "eval.enabled=false",
              "trainer.sample_every=0", "model.generator.width=2",
              "model.discriminator.width=4"]
    with pytest.raises(ConfigError) as e:
        train(tmp_path / "conditional", [*common, "task.conditional=true"])
    assert "A conditional GAN needs labelled data, and dataset 'image_folder' has no labels" in str(e.value)
    assert str(e.value).count(". ") == 0
    assert train(tmp_path / "unconditional", common)["status"] == "finished"


@pytest.mark.slow
def test_conditional_biggan_trains_on_two_cpu_processes_with_replicas_in_step(tmp_path):
    """Two real processes (the launcher of helpers/launch.py): G's conditional BatchNorm statistics,
    kept per rank under broadcast_buffers=False, are averaged before the checkpoint, so both ranks
    end bit-identical, the statistics included."""
    from gan_platform.runs.rundir import read_metrics
    from helpers.launch import finish, launch

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code, out = finish(launch([*CONDITIONAL_DIGITS, "trainer.steps=2", "name=biggan2", "hydra.run.dir=run"], tmp_path, scratch))
    assert code == 0, out[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 2 and summary["num_processes"] == 2
    assert summary["replicas"]["in_sync"] is True and len(set(summary["replicas"]["sha256"])) == 1
    assert len(summary["replicas"]["sha256"]) == 2
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "train/d_loss" in r] == [1, 2]  # logged once
