"""The 2-D MLPs: standardized units (`model.data_scale`) and PacGAN's BatchNorm generator."""

import pytest
import torch

from helpers import compose, run_cli
from gan_platform.errors import ConfigError
from gan_platform.models.mlp import MLPDiscriminator, MLPGenerator
from gan_platform.errors import instantiate
from gan_platform.tasks.gan_build import build_gan_networks


def test_data_scale_makes_the_networks_work_in_standardized_units():
    """G(z) at scale s is s x the unscaled G(z); D at scale s sees x / s: the same function of
    standardized data, so only the optimiser's units change."""
    torch.manual_seed(0)
    G1 = MLPGenerator((2,), z_dim=4, hidden=16, depth=2)
    G4 = MLPGenerator((2,), z_dim=4, hidden=16, depth=2, scale=4.0)
    G4.load_state_dict({**G1.state_dict(), "scale": G4.scale})
    z = torch.randn(5, 4)
    torch.testing.assert_close(G4(z), 4.0 * G1(z))
    D1 = MLPDiscriminator((2,), hidden=16, depth=2, pack=2)
    D4 = MLPDiscriminator((2,), hidden=16, depth=2, pack=2, scale=4.0)
    D4.load_state_dict({**D1.state_dict(), "scale": D4.scale})
    x = torch.randn(6, 2) * 4
    torch.testing.assert_close(D4(x), D1(x / 4.0))
    # the gradient D passes back to G's samples shrinks by the same factor
    x.requires_grad_(True)
    g4, = torch.autograd.grad(D4(x).sum(), x)
    x1 = (x / 4.0).detach().requires_grad_(True)
    g1, = torch.autograd.grad(D1(x1).sum(), x1)
    torch.testing.assert_close(g4, g1 / 4.0)


def test_batch_norm_generator_normalizes_each_hidden_layer_without_biases():
    torch.manual_seed(0)
    G = MLPGenerator((2,), z_dim=2, hidden=32, depth=4, batch_norm=True)
    norms = [m for m in G.body if isinstance(m, torch.nn.BatchNorm1d)]
    linears = [m for m in G.body if isinstance(m, torch.nn.Linear)]
    assert len(norms) == 4 and len(linears) == 4 and all(m.bias is None for m in linears)
    seen = []
    norms[2].register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    G.train()
    G(torch.randn(256, 2) * 3 + 1)
    out = seen[0]
    assert out.mean(0).abs().max() < 1e-5 and (out.std(0, unbiased=False) - 1).abs().max() < 1e-3
    # eval mode uses the running statistics: one sample alone gives the same point as in a batch
    G.eval()
    z = torch.randn(8, 2)
    torch.testing.assert_close(G(z[:1]), G(z)[:1])


@pytest.mark.parametrize("scale", [0.0, -2.0])
def test_a_non_positive_data_scale_is_refused(scale):
    with pytest.raises(ConfigError, match="data_scale must be positive"):
        MLPGenerator((2,), scale=scale)
    with pytest.raises(ConfigError, match="data_scale must be positive"):
        MLPDiscriminator((2,), scale=scale)


@pytest.mark.parametrize("dataset,override,expected", [
    ("grid25", [], 4.0), ("ring8", [], 1.0), ("grid25", ["model.data_scale=2.5"], 2.5)])
def test_data_scale_reaches_both_networks_from_the_config(dataset, override, expected):
    """auto: the radius of the mixture's modes; a number: that number."""
    cfg = compose(["+experiment=toy2d", f"dataset={dataset}", *override])
    data = instantiate(cfg.dataset)
    G, D = build_gan_networks(cfg, data.sample_shape, dataset=data)
    assert float(G.scale) == expected and float(D.scale) == expected
    # the scale is saved with the weights: a G rebuilt without the data gets it back on loading
    G2, _ = build_gan_networks(cfg, data.sample_shape, discriminator=False)
    G2.load_state_dict(G.state_dict())
    assert float(G2.scale) == expected


@pytest.mark.parametrize("bad", ["0", "-1", "big"])
def test_a_bad_data_scale_on_the_command_line_is_one_sentence(tmp_path, bad):
    r = run_cli(["dataset=grid25", "model=mlp", f"model.data_scale={bad}", "trainer.steps=2", "tracker=none"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "model.data_scale must be auto or a positive number" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.rglob("metrics.jsonl"))
