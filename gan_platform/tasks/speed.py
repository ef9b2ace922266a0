"""How a task's networks run: compiled (`trainer.compile`) and in channels-last memory layout
(`trainer.channels_last`). Both are off by default and leave a run that does not ask for them
untouched.

- `trainer.compile=true` compiles each network in place (`nn.Module.compile`, torch.compile under
  the hood) with `trainer.compile_mode` (`default`, `reduce-overhead` for CUDA graphs on small
  fixed-shape networks, `max-autotune`, `max-autotune-no-cudagraphs`) and `trainer.compile_backend`
  (`inductor`; `aot_eager` traces the same graphs without generating code, useful to check a model
  compiles). Compiling in place keeps the parameter names, so checkpoints are the same with and
  without it and a run may resume either way. A gradient penalty needs the gradient of a gradient
  (double backward), which torch.compile does not support: the config check refuses the
  combination (config/checks.py).
- `trainer.channels_last=true` stores convolution weights as NHWC, the layout GPU convolution
  kernels (cuDNN, Tensor Cores) prefer; on the CPU it rarely helps.
- `judges_samples_alone` says whether D's score of a sample depends on that sample alone (no
  BatchNorm, no minibatch-std feature). Then the D step scores the real batch and the fakes in one
  pass over both (as BigGAN-PyTorch's G_D wrapper does): the same scores, to float rounding, from
  half the calls (half the kernel launches on a GPU, half the module dispatch on a CPU). A D with
  batch statistics keeps two passes, so that each batch's statistics are its own. Under spectral
  norm the one pass runs one power iteration per critic step (Miyato et al.'s one per update), and
  both halves are scored under the same estimate of sigma; two passes ran two.
- `set_requires_grad` freezes or unfreezes a list of parameters listed once: a G step freezes D so
  that its backward computes no gradients for D's weights; `Module.requires_grad_` walks the module
  tree on every call, which on small networks costs more than the flags themselves.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def set_requires_grad(params: list[nn.Parameter], flag: bool) -> None:
    """`p.requires_grad_(flag)` for each of `params` (a list made once, see the module docstring)."""
    for p in params:
        p.requires_grad_(flag)


def judges_samples_alone(discriminator: nn.Module) -> bool:
    """True when no layer of `discriminator` mixes the samples of a batch (BatchNorm, a minibatch-std
    feature): one pass over real and fake samples together then scores each as its own pass would."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) or getattr(m, "use_minibatch_std", False)
                   for m in discriminator.modules())


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def prepare_networks(networks: list[nn.Module], trainer_cfg: Any) -> None:
    """Apply `trainer.channels_last` and `trainer.compile` to `networks`, in place, before they are
    handed to the accelerator."""
    for net in networks:
        if trainer_cfg.get("channels_last", False):
            net.to(memory_format=torch.channels_last)
        if trainer_cfg.get("compile", False):
            net.compile(mode=str(trainer_cfg.get("compile_mode", "default")),
                        backend=str(trainer_cfg.get("compile_backend", "inductor")))
