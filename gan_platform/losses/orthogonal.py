"""BigGAN's orthogonal regularisation of the generator (Brock et al. 2019, section 3.1), a pure function.

For each weight matrix W of G whose columns are the layer's filters w_i (a convolution's weight
(out, in, k, k) flattened to one row per filter and transposed):

    R_beta(W) = beta * || W^T W ⊙ (1 - I) ||_F^2 = beta * sum_{i != j} (w_i . w_j)^2

the squared inner products of distinct filters. Unlike the earlier ||W^T W - I||_F^2 it leaves the
filters' norms free and only pushes distinct filters toward orthogonality, which the paper found
makes G amenable to the truncation trick. With the filters as the rows of w (w = W^T) its gradient
is 4 beta (w w^T ⊙ (1 - I)) w; the authors' code (BigGAN-PyTorch, utils.ortho) adds
2 s (w w^T ⊙ (1 - I)) w straight to the gradient, so their strength s is beta = s / 2 here. The
paper's beta is 1e-4.

Which weights, as in the authors' code: every parameter of two or more dimensions, so biases,
BatchNorm gains and attention gains are out, except those of embeddings (G's shared class embedding
is a lookup table, whose rows need not be orthogonal). Under spectral norm W is the stored,
unnormalised weight (torch's `parametrizations.weight.original`), as the authors regularise theirs.

Applied as a G regulariser (beside G's objective), it knows nothing of models or tasks: any module
in, one scalar out.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

BETA = 1e-4  # the paper's


def off_diagonal_gram(weight: Tensor) -> Tensor:
    """||W^T W ⊙ (1 - I)||_F^2 for one layer's weight, filters along its first dimension."""
    w = weight.float().reshape(weight.shape[0], -1)  # (out, fan_in): filters as rows
    gram = w @ w.T
    return gram.pow(2).sum() - torch.diagonal(gram).pow(2).sum()


def orthogonal_weights(module: nn.Module) -> list[Tensor]:
    """The parameters of `module` that BigGAN regularises: two or more dimensions, not an embedding's."""
    embedded = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return [p for p in module.parameters() if p.dim() >= 2 and id(p) not in embedded]


def orthogonal_regularisation(module: nn.Module, beta: float = BETA) -> Tensor:
    """beta * sum over `module`'s regularised weights W of ||W^T W ⊙ (1 - I)||_F^2 (module docstring)."""
    weights = orthogonal_weights(module)
    if not weights:
        return torch.zeros(())
    return beta * torch.stack([off_diagonal_gram(w) for w in weights]).sum()
