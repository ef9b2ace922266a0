"""SAGAN's self-attention block (Zhang et al. 2019, "Self-Attention Generative Adversarial Networks"),
as BigGAN places it in G and D.

For features x (N, C, H, W) and the 1x1 convolutions query, key (C -> C/8), value (C -> C/2) and
out (C/2 -> C), keys and values max-pooled 2 x 2 (a quarter of the positions, as BigGAN does):

    beta_ij = softmax_j(query(x)_i . key(x)_j)          every position i attends to every pooled j
    o_i     = out(sum_j beta_ij value(x)_j)
    y       = x + gamma * o,      gamma a learned scalar, 0 at init

With gamma = 0 the block is the identity at init: the network starts from its convolutions' local
evidence and learns how much non-local evidence to mix in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SelfAttention(nn.Module):
    """y = x + gamma * out(attention(query, key, value)); needs C >= 8 channels and an even side."""

    def __init__(self, channels: int):
        super().__init__()
        if channels < 8:
            raise ValueError(f"SelfAttention needs at least 8 channels (C/8 for query and key), got {channels}")
        self.query = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.key = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.value = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.out = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gain = nn.Parameter(torch.zeros(()))  # gamma

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        q = self.query(x).flatten(2)                    # (N, C/8, HW)
        k = F.max_pool2d(self.key(x), 2).flatten(2)     # (N, C/8, HW/4)
        v = F.max_pool2d(self.value(x), 2).flatten(2)   # (N, C/2, HW/4)
        beta = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (N, HW, HW/4)
        o = (v @ beta.transpose(1, 2)).view(n, -1, h, w)     # (N, C/2, H, W)
        return x + self.gain * self.out(o)
