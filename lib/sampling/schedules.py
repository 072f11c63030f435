"""Noise-level schedules of the samplers, as functions (k-diffusion's ``get_sigmas_*`` style) instead of literal
lists: each returns a 1-d float32 tensor from ``hi`` down to ``lo``."""
from __future__ import annotations

import math

import torch


def linear_sigmas(hi: float = 1.0, lo: float = 0.03, n: int = 100) -> torch.Tensor:
    """``n`` equally spaced sigmas from ``hi`` to ``lo`` (the authors' backward schedule: 1 -> 0.03, 100 steps)."""
    return torch.linspace(hi, lo, n)


def geometric_sigmas(hi: float = 1.0, lo: float = 0.03, n: int = 30) -> torch.Tensor:
    """``n`` log-spaced sigmas from ``hi`` to ``lo`` (equal ratios between steps)."""
    return torch.logspace(math.log10(hi), math.log10(lo), n)
