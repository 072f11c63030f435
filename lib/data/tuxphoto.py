"""tuxphoto: deterministic natural-photo composites (one object on a natural background).

The sprite bank (photographic Tux Paint stamps + nature photos from Debian
packages, GPL-2) lives in ``data/tuxphoto/bank`` and is built by
``data/tuxphoto/build_bank.py``; see ``data/tuxphoto/LICENSE.md``.

Per image ``i`` (random stream ``np.random.default_rng([seed, i])``, so image ``i``
does not depend on ``n``):

* a random background photo, random square crop (side 50-100% of its short
  side), resized to the canvas;
* a random sprite (uniform over classes, then over the sprites of the class),
  longest side 40-90% of the frame, random horizontal flip, rotation of
  +-15 degrees, brightness x[0.8, 1.2], saturation x[0.7, 1.3];
* its centre is placed so that at most ~15% of the (rotated) object leaves the
  frame; alpha-composited (premultiplied alpha);
* rendered at 2x the target size and box-downsampled (antialiasing).

Example::

    from lib.data import tuxphoto
    d = tuxphoto.generate(1000, size=32, seed=0)
    d["images"].shape   # (1000, 3, 32, 32) uint8
    d["labels"]         # int64 class indices into d["class_names"]
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from lib.core.paths import ROOT

DEFAULT_BANK_DIR = ROOT / "data" / "tuxphoto" / "bank"

SUPERSAMPLE = 2  # render at SUPERSAMPLE x size, then box-downsample
SCALE_RANGE = (0.4, 0.9)  # object's longest side / frame side
CROP_RANGE = (0.5, 1.0)  # background crop side / background short side
MAX_ANGLE = 15.0  # degrees
BRIGHTNESS_RANGE = (0.8, 1.2)
SATURATION_RANGE = (0.7, 1.3)
MAX_OUTSIDE = 0.15  # fraction of the object's (rotated) extent allowed outside the frame
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# style "object" (the factor study's object-dominant composites): larger objects on soft, low-contrast backgrounds
OBJECT_SCALE_RANGE = (0.75, 1.0)
OBJECT_BG_BLUR = 1 / 6  # Gaussian blur radius / canvas side
OBJECT_BG_CONTRAST = 0.4  # background = mean + OBJECT_BG_CONTRAST * (blurred - mean)
STYLES = ("photo", "object")

FACTOR_NAMES = ("instance", "background", "scale", "x", "y", "flip", "angle", "brightness",
                "saturation", "crop_size", "crop_x", "crop_y")


class _Bank:
    def __init__(self, root: Path):
        self.root = root
        index_path = root / "index.json"
        if not root.is_dir():
            raise FileNotFoundError(f"tuxphoto bank directory not found: {root}")
        if not index_path.is_file():
            raise FileNotFoundError(f"tuxphoto bank index not found: {index_path}")
        try:
            index = json.loads(index_path.read_text())
            classes = [str(c) for c in index["classes"]]
            sprite_entries = [(str(s["path"]), str(s["class"])) for s in index["sprites"]]
            bg_entries = [str(b["path"]) for b in index["backgrounds"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"corrupt tuxphoto bank index {index_path}: {e!r}") from e
        if not classes or not sprite_entries or not bg_entries:
            raise ValueError(f"corrupt tuxphoto bank index {index_path}: empty classes/sprites/backgrounds")
        cls_id = {c: k for k, c in enumerate(classes)}
        self.class_names = classes
        self.sprites: list[Image.Image] = []  # premultiplied "RGBa" images
        sprite_class = []
        for path, cls in sprite_entries:
            if cls not in cls_id:
                raise ValueError(f"corrupt tuxphoto bank index {index_path}: sprite {path} has unknown class {cls!r}")
            im = self._load(root / path).convert("RGBA").convert("RGBa")
            self.sprites.append(im)
            sprite_class.append(cls_id[cls])
        self.sprite_class = np.asarray(sprite_class, dtype=np.int64)
        self.class_sprites = [np.flatnonzero(self.sprite_class == k) for k in range(len(classes))]
        if any(len(s) == 0 for s in self.class_sprites):
            raise ValueError(f"corrupt tuxphoto bank index {index_path}: a class has no sprites")
        self.backgrounds = [self._load(root / p).convert("RGB") for p in bg_entries]

    @staticmethod
    def _load(path: Path) -> Image.Image:
        try:
            im = Image.open(path)
            im.load()
        except FileNotFoundError as e:
            raise FileNotFoundError(f"tuxphoto bank file missing: {path}") from e
        except OSError as e:
            raise ValueError(f"tuxphoto bank file unreadable: {path}: {e}") from e
        return im


@functools.lru_cache(maxsize=4)
def _load_bank(root: str) -> _Bank:
    return _Bank(Path(root))


def _bank(bank_dir: str | os.PathLike | None) -> _Bank:
    root = Path(bank_dir) if bank_dir is not None else DEFAULT_BANK_DIR
    return _load_bank(str(root.expanduser().resolve()))


def class_names(bank_dir: str | os.PathLike | None = None) -> list[str]:
    """Class names of the bank, in label order."""
    return list(_bank(bank_dir).class_names)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _render_one(bank: _Bank, rng: np.random.Generator, canvas: int, out: np.ndarray, f: dict, i: int,
                style: str = "photo"):
    # ---- background: random square crop, resized to the canvas
    b = int(rng.integers(len(bank.backgrounds)))
    bg = bank.backgrounds[b]
    bw, bh = bg.size
    short = min(bw, bh)
    crop_frac = rng.uniform(*CROP_RANGE)
    side = crop_frac * short
    cx, cy = rng.uniform(0.0, 1.0, size=2)
    x0, y0 = cx * (bw - side), cy * (bh - side)
    bg_im = bg.resize((canvas, canvas), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side),
                      reducing_gap=2.0)
    if style == "object":
        from PIL import ImageFilter
        bg_im = bg_im.filter(ImageFilter.GaussianBlur(canvas * OBJECT_BG_BLUR))
    img = np.asarray(bg_im, dtype=np.float32)
    if style == "object":
        mean = img.mean(axis=(0, 1), keepdims=True)
        img = mean + OBJECT_BG_CONTRAST * (img - mean)

    # ---- sprite: class, instance, scale, flip, rotation, colour jitter
    k = int(rng.integers(len(bank.class_names)))
    members = bank.class_sprites[k]
    s = int(members[rng.integers(len(members))])
    sp = bank.sprites[s]
    scale = rng.uniform(*(OBJECT_SCALE_RANGE if style == "object" else SCALE_RANGE))
    flip = int(rng.integers(2))
    angle = rng.uniform(-MAX_ANGLE, MAX_ANGLE)
    bright = rng.uniform(*BRIGHTNESS_RANGE)
    sat = rng.uniform(*SATURATION_RANGE)
    u, v = rng.uniform(0.0, 1.0, size=2)

    w, h = sp.size
    fac = scale * canvas / max(w, h)
    nw, nh = max(1, round(w * fac)), max(1, round(h * fac))
    im = sp.resize((nw, nh), Image.BICUBIC if fac > 1 else Image.BILINEAR, reducing_gap=2.0)
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    if abs(angle) > 1e-3:
        im = im.rotate(angle, resample=Image.BILINEAR, expand=True)
    a = np.asarray(im, dtype=np.float32) * (1.0 / 255.0)  # premultiplied RGB, alpha
    rgb, alpha = a[..., :3] * 255.0, a[..., 3:]
    gray = rgb @ _LUMA
    rgb = (gray[..., None] + sat * (rgb - gray[..., None])) * bright
    np.clip(rgb, 0.0, 255.0 * alpha, out=rgb)  # keep premultiplied colours valid

    # ---- position: centre so that at most MAX_OUTSIDE of the extent leaves the frame
    ph, pw = alpha.shape[:2]
    lo_x, hi_x = pw * (0.5 - MAX_OUTSIDE), canvas - pw * (0.5 - MAX_OUTSIDE)
    lo_y, hi_y = ph * (0.5 - MAX_OUTSIDE), canvas - ph * (0.5 - MAX_OUTSIDE)
    if hi_x < lo_x:
        lo_x = hi_x = canvas / 2
    if hi_y < lo_y:
        lo_y = hi_y = canvas / 2
    xc, yc = lo_x + u * (hi_x - lo_x), lo_y + v * (hi_y - lo_y)
    px, py = int(round(xc - pw / 2)), int(round(yc - ph / 2))
    # clip the paste rectangle to the canvas
    sx0, sy0 = max(0, -px), max(0, -py)
    dx0, dy0 = max(0, px), max(0, py)
    dx1, dy1 = min(canvas, px + pw), min(canvas, py + ph)
    if dx1 > dx0 and dy1 > dy0:
        sl_s = (slice(sy0, sy0 + dy1 - dy0), slice(sx0, sx0 + dx1 - dx0))
        reg = img[dy0:dy1, dx0:dx1]
        reg *= 1.0 - alpha[sl_s]
        reg += rgb[sl_s]
    out[...] = img

    f["instance"][i] = s
    f["background"][i] = b
    f["scale"][i] = scale
    f["x"][i] = xc / canvas
    f["y"][i] = yc / canvas
    f["flip"][i] = flip
    f["angle"][i] = angle
    f["brightness"][i] = bright
    f["saturation"][i] = sat
    f["crop_size"][i] = crop_frac
    f["crop_x"][i] = cx
    f["crop_y"][i] = cy
    return k


def generate(n: int, size: int = 32, seed: int = 0,
             bank_dir: str | os.PathLike | None = None, style: str = "photo") -> dict:
    """Compose ``n`` images of ``size`` x ``size`` pixels, deterministically for ``seed``.

    ``style="photo"`` (default): objects of 0.4-0.9 of the frame on sharp photo crops;
    ``style="object"``: objects of 0.75-1.0 of the frame on blurred, low-contrast crops (same draws).

    Returns ``dict(images=uint8 (n, 3, size, size), labels=int64 (n,),
    class_names=list[str], factors=dict(...))`` where ``factors`` holds one array
    of length ``n`` per latent factor: ``instance`` (global sprite id, int64),
    ``background`` (background id, int64), ``scale`` (object longest side /
    frame, before rotation), ``x``, ``y`` (object centre in [0, 1] frame
    coordinates, x to the right, y down), ``flip`` (int64 0/1), ``angle``
    (degrees, counter-clockwise), ``brightness``, ``saturation``, ``crop_size``
    (background crop side / background short side), ``crop_x``, ``crop_y``
    (crop position in [0, 1]); float factors are float32.  Image ``i`` depends
    only on ``(seed, i)``, not on ``n``.
    """
    n = _check_int("n", n, 0)
    size = _check_int("size", size, 8)
    seed = _check_int("seed", seed, 0)
    if style not in STYLES:
        raise ValueError(f"style: expected one of {STYLES}, got {style!r}")
    bank = _bank(bank_dir)
    canvas = size * SUPERSAMPLE
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    factors = {k: np.empty(n, dtype=np.int64 if k in ("instance", "background", "flip") else np.float32)
               for k in FACTOR_NAMES}
    buf = np.empty((canvas, canvas, 3), dtype=np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        labels[i] = _render_one(bank, rng, canvas, buf, factors, i, style)
        small = buf.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
        images[i] = np.clip(small + 0.5, 0, 255).astype(np.uint8).transpose(2, 0, 1)
    return dict(images=images, labels=labels, class_names=list(bank.class_names), factors=factors)
