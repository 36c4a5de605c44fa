"""The weak-factor network of the report, one per dataset.

image datasets (week, msnew): x [B, 30, rows, cols]. Each data image goes through a residual block
whose rows are the channels and whose columns are time (a 1-D convolution along the columns):
    out = Downsample(x) + ConvLayer(x)
ConvLayer is `depth` conv1d layers with a nonlinearity (each shortens the columns by kernel-1);
Downsample crops x to the newest columns that remain and maps its channels linearly (a 1x1
convolution) so the shapes match. The block is shared by the 30 images and runs on all at once.
The 30 feature vectors F(t-29) ... F(t) then go through a GRU in time order; its last output goes
through the NN layer to K weak factors z, and a linear map of z gives the output c.
sequence datasets (day, ms, l2): x [B, 30, features] goes to the GRU directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class WeakFactorConfig:
    kind: str  # "image" or "sequence"
    rows: int  # image rows (channels) or sequence features
    cols: int = 0  # image columns; 0 for sequences
    steps: int = 30
    conv_channels: int = 16
    kernel: int = 2
    depth: int = 2
    feature_dim: int = 32
    hidden: int = 32
    n_factors: int = 8  # K
    dropout: float = 0.0
    instance_norm: bool = False  # inputs carry instance-normalised copies of the rows (datasets.preprocess.inputs)

    @property
    def in_rows(self) -> int:
        """Rows (channels) or features the network reads: doubled with the instance-normalised copies."""
        return self.rows * (2 if self.instance_norm else 1)


class ResidualImageBlock(nn.Module):
    def __init__(self, cfg: WeakFactorConfig):
        super().__init__()
        layers, c_in = [], cfg.in_rows
        for _ in range(cfg.depth):
            layers += [nn.Conv1d(c_in, cfg.conv_channels, cfg.kernel), nn.GELU()]
            c_in = cfg.conv_channels
        self.conv = nn.Sequential(*layers)
        self.out_cols = cfg.cols - cfg.depth * (cfg.kernel - 1)
        if self.out_cols < 1:
            raise ValueError(f"{cfg.depth} conv layers of kernel {cfg.kernel} do not fit {cfg.cols} columns")
        self.down = nn.Conv1d(cfg.in_rows, cfg.conv_channels, 1)  # linear map of the channels
        self.proj = nn.Linear(cfg.conv_channels * self.out_cols, cfg.feature_dim)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img [M, rows, cols] -> features [M, feature_dim]."""
        skip = self.down(img[:, :, -self.out_cols:])  # crop to the newest columns, then map
        out = torch.nn.functional.gelu(skip + self.conv(img))
        return self.proj(out.flatten(1))


class WeakFactorNet(nn.Module):
    def __init__(self, cfg: WeakFactorConfig):
        super().__init__()
        self.cfg = cfg
        self.block = ResidualImageBlock(cfg) if cfg.kind == "image" else None
        gru_in = cfg.feature_dim if cfg.kind == "image" else cfg.in_rows
        self.gru = nn.GRU(gru_in, cfg.hidden, batch_first=True)
        self.drop = nn.Dropout(cfg.dropout)
        self.nn_layer = nn.Linear(cfg.hidden, cfg.n_factors)  # weak factors z
        self.combine = nn.Linear(cfg.n_factors, 1)  # output c

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 30, rows, cols] or [B, 30, features] -> (z [B, K], c [B])."""
        if self.block is not None:
            b, s = x.shape[:2]
            feats = self.block(x.reshape(b * s, *x.shape[2:])).reshape(b, s, -1)  # all 30 images at once
        else:
            feats = x
        out, _ = self.gru(feats)
        z = self.nn_layer(self.drop(out[:, -1]))
        return z, self.combine(z).squeeze(-1)
