"""Procedural shapes with exact factors: shape (the label), texture, colour, position, size.

Image i is drawn from its own generator seeded with (seed, i), so it does not depend on n.
Rendering is done at 4x supersampling and box-filtered down (anti-aliased edges).
"""
from __future__ import annotations

import numpy as np

SHAPES = ("disk", "square", "triangle", "ring", "cross")
TEXTURES = ("flat", "stripes", "checker", "dots")
SS = 4  # supersampling factor


def _mask(shape: str, X, Y, r):
    if shape == "disk":
        return X**2 + Y**2 <= r**2
    if shape == "square":
        return (np.abs(X) <= 0.8 * r) & (np.abs(Y) <= 0.8 * r)
    if shape == "triangle":
        return (Y <= 0.7 * r) & (Y >= -r + 1.7 * np.abs(X))
    if shape == "ring":
        d = X**2 + Y**2
        return (d <= r**2) & (d >= (0.55 * r) ** 2)
    if shape == "cross":
        return ((np.abs(X) <= 0.3 * r) & (np.abs(Y) <= r)) | ((np.abs(Y) <= 0.3 * r) & (np.abs(X) <= r))
    raise ValueError(shape)


def _texture(kind: str, X, Y, freq, phase):
    if kind == "flat":
        return np.ones_like(X)
    if kind == "stripes":
        return 0.6 + 0.4 * (np.sin(freq * (X + Y) + phase) > 0)
    if kind == "checker":
        return 0.6 + 0.4 * ((np.floor(freq * X / np.pi + phase) + np.floor(freq * Y / np.pi)) % 2)
    if kind == "dots":
        return 0.6 + 0.4 * ((np.sin(freq * X + phase) * np.sin(freq * Y)) > 0.5)
    raise ValueError(kind)


def render_one(rng: np.random.Generator, size: int):
    """One image (uint8 (3, size, size)) drawn from ``rng``, with its factors."""
    S = size * SS
    shape_id = int(rng.integers(len(SHAPES)))
    tex_id = int(rng.integers(len(TEXTURES)))
    colour = rng.uniform(0.15, 1.0, 3)
    bg = rng.uniform(0.0, 1.0, 3) * rng.uniform(0.2, 0.8)
    grad = rng.normal(0, 0.15, 2)
    radius = float(rng.uniform(0.2, 0.42))
    cx, cy = rng.uniform(-0.45, 0.45, 2) * (1 - radius)
    freq, phase = float(rng.uniform(15, 40)), float(rng.uniform(0, 2 * np.pi))
    t = (np.arange(S) + 0.5) / S * 2 - 1
    Y, X = np.meshgrid(t, t, indexing="ij")
    m = _mask(SHAPES[shape_id], X - cx, Y - cy, radius).astype(np.float32)
    tex = _texture(TEXTURES[tex_id], X, Y, freq, phase)
    back = np.clip(bg[:, None, None] + grad[0] * X + grad[1] * Y, 0, 1)
    img = back * (1 - m) + (colour[:, None, None] * tex) * m
    img = img.reshape(3, size, SS, size, SS).mean(axis=(2, 4))
    factors = dict(shape=shape_id, texture=tex_id, hue=float(np.argmax(colour)), x=float(cx), y=float(cy),
                   size=radius)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8), factors


def generate(n: int, size: int = 32, seed: int = 0) -> dict:
    """``n`` images at ``size``: {images, labels (the shape), class_names, factors}; image i depends only on
    (seed, i)."""
    if int(n) < 0:
        raise ValueError(f"n: expected >= 0, got {n}")
    if int(size) < 8:
        raise ValueError(f"size: expected >= 8, got {size}")
    images = np.zeros((n, 3, size, size), np.uint8)
    facs = {k: [] for k in ("shape", "texture", "hue", "x", "y", "size")}
    for i in range(n):
        images[i], f = render_one(np.random.default_rng([int(seed), i]), size)
        for k, v in f.items():
            facs[k].append(v)
    factors = {k: np.asarray(v, np.float32 if k in ("x", "y", "size") else np.int64) for k, v in facs.items()}
    return dict(images=images, labels=factors["shape"].copy(), class_names=list(SHAPES), factors=factors)
