"""StyleGAN2's networks (models/stylegan2.py) proven by the paper's properties: unit variance after
demodulation, equalised learning rate, truncation and style mixing in W, the path length penalty
against its definition, and the parameter counts of stylegan2-ada's CIFAR-10 networks.
Training through the platform, sampling and two processes: test_stylegan2_training.py."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan_platform.errors import ConfigError
from gan_platform.losses import path_length_penalty
from gan_platform.models.stylegan2 import MappingNetwork, StyleGAN2Discriminator, StyleGAN2Generator
from gan_platform.models.stylegan2_layers import EqualConv2d, MinibatchStd, ModulatedConv, ToRGB
from gan_platform.tasks.speed import judges_samples_alone


def tiny_generator(side: int = 16, **kw) -> StyleGAN2Generator:
    torch.manual_seed(0)
    args = dict(z_dim=8, w_dim=8, mapping_layers=2, channel_base=4 * side, channel_max=8) | kw
    return StyleGAN2Generator((1, side, side), **args)


def test_demodulation_gives_every_output_channel_unit_variance_whatever_the_style():
    """Eq. 3: for inputs of unit variance, w''_ijk = s_i w_ijk / sqrt(sum (s_i w_ijk)^2) gives each
    output channel unit variance, for any style. Measured on every stride-1 modulated convolution of
    a G over 32k interior pixels of draws of x ~ N(0, I) (zero padding shrinks the border's), for styles
    from w of scale 0.1 to 30; the same measurement without demodulation is far from 1 (the control)."""
    G = tiny_generator(16, channel_max=16)
    layers = [b.conv1 for b in G.synthesis.blocks]
    assert [layer.resolution for layer in layers] == [4, 8, 16]
    gen = torch.Generator().manual_seed(1)
    for layer in layers:
        r, c_in = layer.resolution, layer.weight.shape[1]
        n = 32768 // (r - 2) ** 2
        x = torch.randn(n, c_in, r, r, generator=gen)
        for scale in (0.1, 3.0, 30.0):
            w = torch.randn(n, 8, generator=gen) * scale
            with torch.no_grad():
                out = layer.convolve(x, w)[:, :, 1:-1, 1:-1]
                control = F.conv2d(x * layer.affine(w)[:, :, None, None], layer.weight * layer.weight_gain, padding=1)
            var = out.var(dim=(0, 2, 3))
            assert torch.allclose(var, torch.ones_like(var), atol=0.06), (r, scale, var)
            if scale >= 3.0:
                assert (control[:, :, 1:-1, 1:-1].var(dim=(0, 2, 3)) - 1).abs().max() > 0.5


def test_equalised_learning_rate_scales_stored_n01_weights_by_lr_multiplier_over_sqrt_fan_in():
    """Every layer uses w = w_hat * lambda / sqrt(fan_in), b = b_hat * lambda; stored weights are N(0, 1)
    where lambda = 1 and N(0, 1 / lambda^2) in the mapping network (lambda = 0.01; the authors'
    FullyConnectedLayer stores randn / lambda, so that used weights start at He's scale 1 / sqrt(fan_in)
    everywhere). Then one Adam step of lr moves every used weight by lr * lambda / sqrt(fan_in)."""
    torch.manual_seed(0)
    G = StyleGAN2Generator((3, 32, 32), z_dim=64, w_dim=64, mapping_layers=2, channel_base=2048, channel_max=64)
    mapping = G.mapping.layers[1]
    for layer, lr_mul, fan_in in ((mapping, 0.01, 64), (G.synthesis.blocks[1].conv0.affine, 1.0, 64)):
        assert layer.weight.std().item() == pytest.approx(1 / lr_mul, rel=0.03) and abs(layer.weight.mean()) < 0.02 / lr_mul
        x = torch.randn(5, fan_in)
        with torch.no_grad():
            layer.bias.normal_()
            used = F.linear(x, layer.weight * (lr_mul / math.sqrt(fan_in)), layer.bias * lr_mul)
            assert torch.allclose(layer(x), F.leaky_relu(used, 0.2) * math.sqrt(2) if layer.activation else used, atol=1e-5)
    D = StyleGAN2Discriminator((3, 32, 32), channel_base=2048, channel_max=64)
    conv = D.blocks[1].conv0
    assert conv.weight.std().item() == pytest.approx(1.0, rel=0.02)
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        expected = F.leaky_relu(F.conv2d(x, conv.weight / math.sqrt(64 * 9), conv.bias, padding=1), 0.2) * math.sqrt(2)
        assert torch.allclose(conv(x), expected, atol=1e-5)
    for layer, lr_mul, fan_in in ((mapping, 0.01, 64), (conv, 1.0, 64 * 9)):
        before = layer.weight.detach().clone()
        opt = torch.optim.Adam([layer.weight], lr=1e-3, eps=1e-12)
        out = layer(torch.randn(4, fan_in) if layer is mapping else torch.randn(4, 64, 8, 8))
        (out * torch.randn_like(out)).sum().backward()
        opt.step()
        moved = (layer.weight.detach() - before).abs() * lr_mul / math.sqrt(fan_in)
        assert torch.allclose(moved, torch.full_like(moved, 1e-3 * lr_mul / math.sqrt(fan_in)), rtol=1e-3)
    for layer in (m for net in (G, D) for m in net.modules() if isinstance(m, (EqualConv2d, ModulatedConv, ToRGB))):
        assert layer.weight_gain == pytest.approx(1 / math.sqrt(layer.weight[0].numel()))


def test_truncation_psi_0_is_one_image_for_every_z_and_psi_1_changes_nothing():
    G = tiny_generator().eval()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
        for block in G.synthesis.blocks:  # noise inputs that matter: the fixed draw is used in eval
            block.conv1.noise_strength.fill_(0.5)
        z = torch.randn(6, 8)
        average = G(z, psi=0.0)
        assert torch.equal(average, average[:1].expand_as(average))
        untruncated = G.synthesis(G.mapping(z).unsqueeze(1).expand(-1, G.num_ws, -1), "const")
        assert torch.equal(G(z, psi=1.0), untruncated) and untruncated.std(dim=0).mean() > 1e-3
        spread = [G(z, psi=psi).std(dim=0).mean().item() for psi in (0.0, 0.5, 1.0)]
        assert spread[0] == 0.0 < spread[1] < spread[2]
        w = torch.randn(3, G.num_ws, 8)
        assert torch.allclose(G.truncate(w, 0.25), G.mapping.w_avg + 0.25 * (w - G.mapping.w_avg))


def test_w_average_is_tracked_by_training_forwards_with_decay_0995():
    G = tiny_generator()
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    G.train()
    G(z1, mix_z=z2, cutoff=2)                             # the second latent of a mix does not count
    w1 = G.mapping(z1, update_average=False).mean(dim=0)
    assert torch.allclose(G.mapping.w_avg, 0.005 * w1, atol=1e-7)
    G.eval()
    G(z2)
    assert torch.allclose(G.mapping.w_avg, 0.005 * w1, atol=1e-7)  # eval forwards leave it alone


def test_style_mixing_with_cutoff_k_gives_layers_before_k_w1_and_the_rest_w2():
    G = tiny_generator().eval()
    seen: dict[int, torch.Tensor] = {}
    first = 0
    for block in G.synthesis.blocks:  # the w index of each layer: a block's ToRGB shares the next block's first
        layers = ([block.conv0] if block.num_conv == 2 else []) + [block.conv1, block.torgb]
        for i, layer in enumerate(layers):
            layer.affine.register_forward_hook(lambda m, inp, out, idx=first + i: seen.__setitem__(idx, inp[0]))
        first += block.num_conv
    z1, z2 = torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():
        w1, w2 = G.mapping(z1), G.mapping(z2)
        for k in range(G.num_ws + 1):
            seen.clear()
            mixed = G(z1, mix_z=z2, cutoff=k)
            assert sorted(seen) == list(range(G.num_ws))
            for idx, w in seen.items():
                assert torch.equal(w, w1 if idx < k else w2), (k, idx)
            ws = torch.stack([w1 if idx < k else w2 for idx in range(G.num_ws)], dim=1)
            assert torch.equal(mixed, G.synthesis(ws, "const"))
        assert torch.equal(G(z1, mix_z=z2, cutoff=G.num_ws), G(z1)) and torch.equal(G(z1, mix_z=z2, cutoff=0), G(z2))
    torch.manual_seed(3)
    cutoffs = {int(G.style_mixing_inputs(z1)[1]) for _ in range(200)}
    assert cutoffs == set(range(1, G.num_ws + 1))  # 1..num_ws-1 when mixing, num_ws (no mix) with probability 0.1
    assert tiny_generator(style_mixing=0.0).style_mixing_inputs(z1) == (None, None)


def test_noise_strengths_start_at_zero_and_then_add_the_chosen_noise():
    G = tiny_generator().eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(G(z, noise="random"), G(z, noise="none"))
        G.synthesis.blocks[-1].conv1.noise_strength.fill_(1.0)
        assert not torch.equal(G(z, noise="random"), G(z, noise="random"))
        assert torch.equal(G(z), G(z, noise="const")) and not torch.equal(G(z, noise="const"), G(z, noise="none"))


def test_the_path_length_penalty_equals_its_definition_with_an_explicit_jacobian():
    """E (||J_w^T y|| - a')^2 with a' = a + 0.01 (mean ||J_w^T y|| - a): here J is built whole,
    column by column (torch.autograd.functional.jacobian of one sample's image), and J^T y is a
    matrix product; the function under test takes one backward of <g(w), y>. Per layer ws (N, L, w_dim):
    the length is sqrt(mean_l ||J_{w_l}^T y||^2) (stylegan2's code); one w (N, w_dim): ||J_w^T y||."""
    G = tiny_generator(8)
    with torch.no_grad():
        for block in G.synthesis.blocks:
            block.conv1.noise_strength.fill_(0.3)
    ws = G.mapping(torch.randn(3, 8)).detach().unsqueeze(1).repeat(1, G.num_ws, 1).requires_grad_(True)
    y = torch.randn(3, 1, 8, 8) / 8.0
    one = lambda v: G.synthesis(v[None], "const")[0]  # noqa: E731 - one sample's image of its ws
    penalty, new_mean = path_length_penalty(G.synthesis(ws, "const"), ws, torch.tensor(0.7), noise=y)
    lengths = []
    for i in range(3):
        J = torch.autograd.functional.jacobian(one, ws[i].detach())            # (1, 8, 8, L, w_dim)
        jty = (J.reshape(64, -1).t() @ y[i].reshape(64)).reshape(G.num_ws, 8)  # J^T y per layer
        lengths.append(jty.square().sum(dim=1).mean().sqrt())
    lengths = torch.stack(lengths)
    a = 0.7 + 0.01 * (lengths.mean() - 0.7)
    assert torch.allclose(new_mean, a) and torch.allclose(penalty, (lengths - a).square().mean(), rtol=1e-4)
    penalty.backward()  # the graph is kept: the penalty trains G
    assert G.synthesis.blocks[-1].conv1.weight.grad.abs().sum() > 0 and not new_mean.requires_grad
    w = ws[:, 0].detach().requires_grad_(True)  # one w per sample: ||J_w^T y||, the broadcast summed over layers
    images = G.synthesis(w.unsqueeze(1).expand(-1, G.num_ws, -1), "const")
    penalty, new_mean = path_length_penalty(images, w, 0.0, noise=y)
    norms = torch.stack([(torch.autograd.functional.jacobian(lambda v: one(v.expand(G.num_ws, -1)), w[i].detach())
                          .reshape(64, 8).t() @ y[i].reshape(64)).norm() for i in range(3)])
    assert torch.allclose(new_mean, 0.01 * norms.mean()) and torch.allclose(penalty, (norms - 0.01 * norms.mean()).square().mean(), rtol=1e-4)
    torch.manual_seed(5)
    drawn, _ = path_length_penalty(images, w, 0.0)  # y drawn as N(0, I) / sqrt(H W)
    torch.manual_seed(5)
    assert torch.allclose(drawn, path_length_penalty(images, w, 0.0, noise=torch.randn_like(images) / 8.0)[0])


# stylegan2-ada-pytorch (NVlabs, commit d72cc7d), train.py --cfg=cifar --cond=1: z_dim = w_dim = 512,
# channel_base 32768 (fmaps=1; the TensorFlow code's fmap_base 16384 names the same widths) and
# channel_max 512, so 512 channels at every side up to 32; map=2 mapping layers in G (D's class
# mapping keeps the default 8); D architecture 'orig' (cifar turns the residual shortcuts off).
# Counted by building training/networks.py's Generator and Discriminator with those arguments, and
# by hand: G = mapping (embed 5,632 + 524,800 + 262,656) + synthesis (const 8,192, 7 modulated convs
# of 2,622,465, 4 ToRGB of 264,195) = 20,215,315; D (orig) = 3 blocks (FromRGB 2,048 + 6 convs of
# 2,359,808) + epilogue (2,364,416 + 4,194,816 + 262,656) + class mapping (5,632 + 8 x 262,656) =
# 23,089,664; each resnet shortcut adds 262,144; unconditional: no embeddings, D's output 1 wide.
OFFICIAL_CIFAR10 = {  # (conditional, D architecture) -> (G, D)
    (True, "orig"): (20_215_315, 23_089_664), (True, "resnet"): (20_215_315, 23_876_096),
    (False, "orig"): (19_947_539, 20_720_641), (False, "resnet"): (19_947_539, 21_507_073),
}


@pytest.mark.parametrize("conditional, architecture", sorted(OFFICIAL_CIFAR10))
@pytest.mark.parametrize("channel_base", [16384, 32768])
def test_parameter_counts_match_stylegan2_ada_cifar10(conditional, architecture, channel_base):
    official_g, official_d = OFFICIAL_CIFAR10[conditional, architecture]
    classes = 10 if conditional else 0
    with torch.device("meta"):  # shapes only: no 44M random numbers
        G = StyleGAN2Generator((3, 32, 32), z_dim=512, num_classes=classes, w_dim=512, mapping_layers=2,
                               channel_base=channel_base, channel_max=512)
        D = StyleGAN2Discriminator((3, 32, 32), num_classes=classes, architecture=architecture,
                                   channel_base=channel_base, channel_max=512, mbstd_group_size=32)
    g, d = (sum(p.numel() for p in net.parameters()) for net in (G, D))
    assert abs(g - official_g) <= 0.01 * official_g and abs(d - official_d) <= 0.01 * official_d
    assert (g, d) == (official_g, official_d)  # in fact exactly


def test_minibatch_std_is_the_std_over_each_group_and_makes_d_judge_groups():
    layer = MinibatchStd(group_size=4)
    x = torch.randn(8, 6, 4, 4)
    out = layer(x)
    assert out.shape == (8, 7, 4, 4) and torch.equal(out[:, :6], x)
    for k in range(2):  # groups of 4 samples: k, k + 2, k + 4, k + 6
        group = x[k::2]
        expected = group.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
        assert torch.allclose(out[k::2, 6], expected.expand(4, 4, 4), atol=1e-6)
    alike = x[:2].repeat(4, 1, 1, 1)  # every group holds one sample four times
    assert layer(alike)[:, 6].max() < 1e-3
    assert MinibatchStd(4)(torch.randn(6, 2, 4, 4)).shape == (6, 3, 4, 4)  # 6 samples: groups of gcd(4, 6) = 2
    assert not judges_samples_alone(StyleGAN2Discriminator((1, 8, 8), channel_base=32, channel_max=8))
    assert judges_samples_alone(StyleGAN2Discriminator((1, 8, 8), channel_base=32, channel_max=8, minibatch_std=False))


def test_discriminator_scores_each_sample_projects_classes_and_packs():
    torch.manual_seed(0)
    x = torch.randn(8, 1, 16, 16)
    for architecture, skips in (("resnet", 2), ("orig", 0)):
        D = StyleGAN2Discriminator((1, 16, 16), architecture=architecture, channel_base=64, channel_max=8)
        assert D(x).shape == (8,) and sum(b.skip is not None for b in D.blocks) == skips
    D = StyleGAN2Discriminator((1, 16, 16), num_classes=10, channel_base=64, channel_max=8, mapping_layers=2)
    assert isinstance(D.mapping, MappingNetwork) and D.out.weight.shape == (8, 8)
    with torch.no_grad():
        same, other = D(x, torch.full((8,), 3)), D(x, torch.full((8,), 4))
        h = D.blocks[1](D.blocks[0](None, x), x)
        out = D.out(D.fc(D.conv(D.mbstd(h)).flatten(1)))
        assert torch.allclose(same, (out * D.mapping(None, torch.full((8,), 3))).sum(1) / math.sqrt(8), atol=1e-5)
    assert not torch.allclose(same, other)
    packed = StyleGAN2Discriminator((1, 16, 16), pack=2, channel_base=64, channel_max=8)
    assert packed.blocks[0].fromrgb.weight.shape[1] == 2 and packed(x).shape == (4,)


@pytest.mark.parametrize("build, message", [
    (lambda: StyleGAN2Discriminator((1, 16, 16), spectral_norm=True), "set model.discriminator.spectral_norm=false."),
    (lambda: StyleGAN2Discriminator((1, 16, 16), num_classes=10, conditioning="concat"), "set model.conditioning=projection."),
    (lambda: StyleGAN2Discriminator((1, 16, 16), architecture="skip"), "choose one of resnet, orig."),
    (lambda: StyleGAN2Generator((1, 24, 24)), "model=stylegan2 needs square images of side 8, 16, 32, 64, ...; got 24"),
    (lambda: StyleGAN2Generator((1, 32, 32), channel_base=16), "leave no channels at 32 x 32: set channel_base to at least 32"),
    (lambda: StyleGAN2Generator((1, 16, 16), eval_noise="fixed"), "choose one of random, const, none."),
    (lambda: StyleGAN2Generator((1, 16, 16), mapping_layers=0), "mapping_layers must be at least 1"),
])
def test_options_stylegan2_cannot_take_are_refused_in_one_sentence(build, message):
    with pytest.raises(ConfigError) as e:
        build()
    assert message in str(e.value) and str(e.value).count(". ") == 0
