"""Where training runs: CUDA with bf16 autocast when present, else the CPU with all its cores."""

from __future__ import annotations

import contextlib
import os

import torch


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked for, but torch sees no CUDA device")
    if preference == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    return torch.device(preference)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; nothing on the CPU (fp32 there keeps runs bit-reproducible)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
