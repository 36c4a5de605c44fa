"""The report's loss for one cross-sectional batch of N stocks with K weak factors:

    L = (1/N) sum_i (batchnorm(c_i) - y_i)^2  +  lambda / (N K^2) * || Z^T Z ||_F

y is the standardised label. batchnorm is the batch's own standardisation (no affine terms).
Z enters the penalty standardised per factor over the batch as well, so Z^T Z / N is the weak
factors' correlation matrix: without that, the network could shrink Z (c is batch-normalised
anyway) and escape the penalty without decorrelating anything.
"""

from __future__ import annotations

import torch

EPS = 1e-5


def batchnorm(x: torch.Tensor) -> torch.Tensor:
    """Standardise over the batch (dim 0), biased variance, as BatchNorm does in training."""
    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + EPS)


def factor_loss(c: torch.Tensor, z: torch.Tensor, y: torch.Tensor, lam: float) -> tuple[torch.Tensor, dict]:
    n, k = z.shape
    mse = ((batchnorm(c) - y) ** 2).mean()
    zs = batchnorm(z)
    penalty = lam / (n * k * k) * torch.linalg.matrix_norm(zs.T @ zs, ord="fro")
    return mse + penalty, {"mse": float(mse.detach()), "penalty": float(penalty.detach())}
