"""The yardstick: a minimal hand-written GAN loop, in the style of pytorch/examples' DCGAN.

Same networks (the platform's own model classes, default sizes), same batch size, same loss (the
non-saturating GAN loss as BCE-with-logits against labels 1 and 0, which is the platform's
`nonsaturating` objective), same optimizer (Adam 2e-4, betas 0.5/0.999). The `sngan32` workload is
`+experiment=sngan32`'s step instead: the hinge loss, Adam betas (0, 0.9) and 5 D steps, each on a
fresh real batch, per G step. What it does, and how that differs from pytorch/examples:

- one D step (real batch, fresh fakes from G under no_grad, one backward of errD_real + errD_fake),
  then one G step with FRESH noise: the platform's arithmetic. pytorch/examples reuses the D step's
  fakes for the G step, which saves a G forward: a different algorithm, so not copied here.
- it reads the losses with `.item()` every iteration, as pytorch/examples does, and prints (here:
  keeps) them every `log_every` iterations.
- data: ring8 draws a fresh batch from the mixture every step (what a 2-D toy script does); digits
  go through a shuffling `DataLoader` over a float TensorDataset (what pytorch/examples does).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from gan_platform.data.digits import load_digit_images
from gan_platform.data.mixtures import ring_means
from gan_platform.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_platform.models.mlp import MLPDiscriminator, MLPGenerator
from gan_platform.models.resnet import ResNetDiscriminator, ResNetGenerator

# workload -> (loss, D steps per G step, Adam betas); the rest: ("bce", 1, (0.5, 0.999))
RECIPES = {"sngan32": ("hinge", 5, (0.0, 0.9))}


def recipe(workload: str) -> tuple[str, int, tuple[float, float]]:
    return RECIPES.get(workload, ("bce", 1, (0.5, 0.999)))


def _ring_batches(batch_size: int, device: torch.device):
    means, sigma = ring_means(8, 1.0).to(device), 0.01
    while True:
        idx = torch.randint(len(means), (batch_size,), device=device)
        yield means[idx] + sigma * torch.randn(batch_size, 2, device=device)


def _digit_batches(batch_size: int, device: torch.device, resolution: int = 16):
    x, _ = load_digit_images(resolution)
    data = torch.utils.data.TensorDataset(x.float() / 127.5 - 1.0)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
    while True:
        for (real,) in loader:
            yield real.to(device, non_blocking=True)


def build(workload: str, batch_size: int, device: torch.device):
    """(netG, netD, z_dim, batches) for `ring8` (MLPs), `digits` (DCGAN, 16 x 16), `dcgan64`
    (DCGAN width 64 on 64 x 64 digits, as `+experiment=dcgan64`) or `sngan32` (SNGAN's ResNets,
    spectral norm in D, on 32 x 32 digits, as `+experiment=sngan32`)."""
    if workload == "ring8":
        z_dim = 16
        netG, netD, batches = MLPGenerator((2,), z_dim=z_dim), MLPDiscriminator((2,)), _ring_batches(batch_size, device)
    elif workload == "digits":
        z_dim = 64
        netG, netD = DCGANGenerator((1, 16, 16), z_dim=z_dim), DCGANDiscriminator((1, 16, 16))
        batches = _digit_batches(batch_size, device)
    elif workload == "dcgan64":
        z_dim = 100
        netG, netD = DCGANGenerator((1, 64, 64), z_dim=z_dim, width=64), DCGANDiscriminator((1, 64, 64), width=64)
        batches = _digit_batches(batch_size, device, 64)
    elif workload == "sngan32":
        z_dim = 128
        netG, netD = ResNetGenerator((1, 32, 32), z_dim=z_dim), ResNetDiscriminator((1, 32, 32), spectral_norm=True)
        batches = _digit_batches(batch_size, device, 32)
    else:
        raise ValueError(f"unknown workload {workload!r}")
    return netG.to(device), netD.to(device), z_dim, batches


def train(workload: str, steps: int, batch_size: int = 64, log_every: int = 50, seed: int = 0) -> float:
    """Train `steps` iterations from scratch; returns the wall seconds, set-up included."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where the platform trains too
    netG, netD, z_dim, batches = build(workload, batch_size, device)
    loss, d_steps, betas = recipe(workload)
    hinge = loss == "hinge"
    criterion = nn.BCEWithLogitsLoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=betas)
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=betas)
    real_label = torch.ones(batch_size, device=device)
    fake_label = torch.zeros(batch_size, device=device)
    log = []
    for i in range(steps):
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z))) (hinge: minimize relu(1 - D(x)) + relu(1 + D(G(z))))
        for _ in range(d_steps):
            real = next(batches)
            netD.zero_grad()
            output = netD(real)
            errD_real = torch.relu(1 - output).mean() if hinge else criterion(output, real_label)
            D_x = torch.sigmoid(output).mean().item()
            with torch.no_grad():
                fake = netG(torch.randn(batch_size, z_dim, device=device))
            output = netD(fake)
            errD_fake = torch.relu(1 + output).mean() if hinge else criterion(output, fake_label)
            D_G_z1 = torch.sigmoid(output).mean().item()
            errD = errD_real + errD_fake
            errD.backward()
            optimizerD.step()
        # (2) Update G: maximize log(D(G(z))) (hinge: maximize D(G(z)))
        netG.zero_grad()
        output = netD(netG(torch.randn(batch_size, z_dim, device=device)))
        errG = -output.mean() if hinge else criterion(output, real_label)
        errG.backward()
        optimizerG.step()
        losses = (errD.item(), errG.item(), D_x, D_G_z1)
        if i % log_every == 0:
            log.append(losses)
    return time.perf_counter() - start
