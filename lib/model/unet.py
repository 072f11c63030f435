"""The blind, fully convolutional UNet denoiser of Kadkhodaie, Mallat & Simoncelli (2025).

Read top to bottom: `UNetConfig` (the architecture as data), the normalizations, `UNet` with named
blocks ``enc1..encL``, ``mid``, ``decL..dec1``, and the presets. Block outputs a1..a6 of the paper
are ``enc1, enc2, enc3, mid, dec3, dec2`` for the 3-level network (see `block_names`).

The network is blind (no noise-level input) and returns the denoised image D(y), not the noise.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lib.core.checks import check_field_types, check_images

NORMS = ("scale", "bfbn", "batch", "none")
# Initial per-channel gain of the norms: "ones" (ours, PyTorch's default) or "authors" (the authors'
# denoiser code: N(0, 2/9/64) clipped to +-0.025, i.e. small gains of random sign).
GAIN_INITS = ("ones", "authors")
AUTHORS_GAIN_STD = math.sqrt(2.0 / 9.0 / 64.0)
AUTHORS_GAIN_CLIP = 0.025


@dataclass
class UNetConfig:
    """Architecture of the UNet. ``widths`` are the encoder widths (the decoder mirrors them)."""

    in_channels: int = 3
    widths: tuple[int, ...] = (64, 128, 256)
    mid_width: int = 512
    enc_convs: tuple[int, ...] = (2, 2, 2)
    mid_convs: int = 3
    dec_convs: tuple[int, ...] = (5, 6, 7)  # dec1, dec2, dec3 (dec1's last conv is the output conv)
    norm: str = "scale"
    bias: bool = True
    image_size: int = 64  # the size it was designed/trained for (informational; any multiple works)
    gain_init: str = "ones"  # see GAIN_INITS

    def __post_init__(self):
        check_field_types(self, "UNetConfig")
        self.widths = tuple(int(w) for w in self.widths)
        self.enc_convs = tuple(int(n) for n in self.enc_convs)
        self.dec_convs = tuple(int(n) for n in self.dec_convs)
        L = len(self.widths)
        if L < 1:
            raise ValueError("UNetConfig.widths: need at least one level")
        if len(self.enc_convs) != L or len(self.dec_convs) != L:
            raise ValueError(
                f"UNetConfig: enc_convs {self.enc_convs} and dec_convs {self.dec_convs} must have "
                f"one entry per level ({L} levels from widths {self.widths})")
        if min(self.enc_convs) < 1 or self.mid_convs < 1 or min(self.dec_convs) < 2:
            raise ValueError("UNetConfig: each encoder/middle block needs >= 1 conv, each decoder >= 2")
        if self.norm not in NORMS:
            raise ValueError(f"UNetConfig.norm: expected one of {NORMS}, got {self.norm!r}")
        if self.gain_init not in GAIN_INITS:
            raise ValueError(f"UNetConfig.gain_init: expected one of {GAIN_INITS}, got {self.gain_init!r}")
        if self.in_channels < 1:
            raise ValueError(f"UNetConfig.in_channels: expected >= 1, got {self.in_channels}")

    @property
    def levels(self) -> int:
        """Number of resolution levels (encoder blocks)."""
        return len(self.widths)

    @property
    def downsampling(self) -> int:
        """Height and width of an input must be divisible by this."""
        return 2 ** self.levels

    def to_dict(self) -> dict:
        """The config as a plain dict (what checkpoints store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        """The config of a dict from `to_dict`; unknown keys are a ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"UNetConfig: unknown keys {sorted(unknown)}")
        return cls(**d)


class ScaleNorm(nn.Module):
    """The paper's normalization: each sample divided by its std over (C, H, W), times a learned
    per-channel gain. No mean subtraction, no shift (keeps the network bias-free in the norm)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.eps = eps

    def forward(self, x):
        """``x`` divided by each sample's std over (C, H, W), times the per-channel gain."""
        var = x.float().var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + self.eps).to(x.dtype) * self.gain.view(1, -1, 1, 1).to(x.dtype)


class BiasFreeBatchNorm(nn.Module):
    """Bias-free batch norm (Mohan et al. 2020): divide each channel by its batch std (running std at
    eval), times a learned gain; no mean subtraction, no shift."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.eps, self.momentum = eps, momentum

    def forward(self, x):
        """``x`` divided by each channel's batch std (running std at eval), times the gain."""
        if self.training:
            var = x.float().var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                self.running_var.lerp_(var.detach(), self.momentum)
        else:
            var = self.running_var
        scale = torch.rsqrt(var + self.eps) * self.gain
        return x * scale.view(1, -1, 1, 1).to(x.dtype)


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalization layer named by ``kind`` (one of NORMS) for ``channels`` channels."""
    if kind == "scale":
        return ScaleNorm(channels)
    if kind == "bfbn":
        return BiasFreeBatchNorm(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm: expected one of {NORMS}, got {kind!r}")


class ConvLayer(nn.Sequential):
    """3x3 conv (zero padding) -> norm -> ReLU."""

    def __init__(self, cin, cout, norm="scale", bias=True, use_norm=True, relu=True):
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=bias)]
        if use_norm:
            layers.append(make_norm(norm, cout))
        if relu:
            layers.append(nn.ReLU(inplace=False))
        super().__init__(*layers)


class Block(nn.Sequential):
    """A stack of ConvLayers. The output conv of dec1 has no norm and no ReLU."""

    def __init__(self, cin, cout, n, norm, bias, first_norm=True, out_channels=None):
        layers = []
        for i in range(n):
            last = i == n - 1
            c_out = out_channels if (last and out_channels is not None) else cout
            plain = last and out_channels is not None
            layers.append(ConvLayer(cin if i == 0 else cout, c_out, norm, bias,
                                    use_norm=(first_norm or i > 0) and not plain, relu=not plain))
        super().__init__(*layers)


class UNet(nn.Module):
    """Blind UNet denoiser with named blocks enc1..encL, mid, decL..dec1 and upsamplers up1..upL."""

    def __init__(self, config: UNetConfig | None = None, **overrides):
        super().__init__()
        config = config or UNetConfig()
        if overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = c = config
        L, W = c.levels, c.widths
        for i in range(L):
            cin = c.in_channels if i == 0 else W[i - 1]
            self.add_module(f"enc{i + 1}", Block(cin, W[i], c.enc_convs[i], c.norm, c.bias, first_norm=i > 0))
        self.mid = Block(W[-1], c.mid_width, c.mid_convs, c.norm, c.bias)
        for i in reversed(range(L)):
            below = c.mid_width if i == L - 1 else W[i + 1]
            self.add_module(f"up{i + 1}", nn.ConvTranspose2d(below, W[i], 2, stride=2, bias=False))
            self.add_module(f"dec{i + 1}", Block(2 * W[i], W[i], c.dec_convs[i], c.norm, c.bias,
                                                 out_channels=c.in_channels if i == 0 else None))
        if c.gain_init == "authors":
            with torch.no_grad():
                for m in self.modules():
                    g = getattr(m, "gain", None) if not isinstance(m, nn.BatchNorm2d) else m.weight
                    if isinstance(g, nn.Parameter):
                        g.normal_(0.0, AUTHORS_GAIN_STD).clamp_(-AUTHORS_GAIN_CLIP, AUTHORS_GAIN_CLIP)

    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise ValueError if ``x`` is not an N x C x H x W batch this network accepts."""
        check_images(x, name, channels=self.config.in_channels, multiple=self.config.downsampling,
                     range01=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """The denoised image D(y) of the noisy batch ``y`` (N, C, H, W)."""
        self.check_input(y, "y")
        return self.walk(y)[0]

    def walk(self, y: torch.Tensor, keep: tuple = (), inputs: bool = False, full: bool = True,
             modules: dict | None = None):
        """The forward pass, keeping on the way the spatial means (float32, (N, C)) of the outputs of the
        blocks named in ``keep`` (and, with inputs=True, of their inputs). full=False stops after the last
        of them. Returns (D(y), or None when it stopped early; {block: means}; {block: input means}).

        The one statement of the network's topology: `forward` is ``walk(y)[0]``, and the compiled
        extraction of phi (`lib.representation.phi`) calls it with ``modules``, compiled stand-ins for the blocks
        ({name: callable}; `lib.model.compiled`). No input check: `forward` and the callers check."""
        outs, ins, left = {}, {}, [n for n in self.block_names if n in keep]

        def block(name, x):
            out = (modules[name] if modules else getattr(self, name))(x)
            if name in left:
                outs[name] = out.float().mean(dim=(2, 3))
                if inputs:
                    ins[name] = x.float().mean(dim=(2, 3))
                left.remove(name)
            return out

        L = self.config.levels
        skips, h = [], y
        for i in range(L):
            h = block(f"enc{i + 1}", h)
            skips.append(h)
            if keep and not full and not left:
                return None, outs, ins
            h = F.avg_pool2d(h, 2)
        h = block("mid", h)
        if keep and not full and not left:
            return None, outs, ins
        for i in reversed(range(L)):
            h = getattr(self, f"up{i + 1}")(h)
            h = block(f"dec{i + 1}", torch.cat([h, skips[i]], dim=1))
            if keep and not full and not left:
                return None, outs, ins
        return h, outs, ins

    @property
    def block_names(self) -> list[str]:
        """Blocks in forward order: enc1..encL, mid, decL..dec1."""
        L = self.config.levels
        return [f"enc{i}" for i in range(1, L + 1)] + ["mid"] + [f"dec{i}" for i in range(L, 0, -1)]


# Block naming, in one place. Code, caches and notebooks use the module names enc1..encL, mid, decL..dec1.
# The paper's figures call the block outputs a1..a(2L) (enc1..encL, mid, decL..dec2) and draw the blocks as
# E1..EL, B, DL..D1; `block_aliases` and `block_label` are the only maps between the three.


def block_aliases(levels: int = 3) -> dict[str, str]:
    """The paper's names a1..a(2L) for enc1..encL, mid, decL..dec2."""
    names = [f"enc{i}" for i in range(1, levels + 1)] + ["mid"] + [f"dec{i}" for i in range(levels, 1, -1)]
    return {f"a{k + 1}": n for k, n in enumerate(names)}


def block_label(block: str, levels: int = 3, mid: str = "B") -> str:
    """The figure label of a block given by name or paper alias: enc2 or a2 -> "E2", mid or a4 -> ``mid``,
    dec3 or a5 -> "D3"; anything else is returned as it is."""
    name = block_aliases(levels).get(block, block)
    if name == "mid":
        return mid
    if name[:3] in ("enc", "dec") and name[3:].isdigit():
        return ("E" if name[:3] == "enc" else "D") + name[3:]
    return block


PRESETS: dict[str, UNetConfig] = {
    # The paper's ImageNet 64x64 network: 13,678,147 parameters, middle block 8x8 at 64x64.
    "paper64": UNetConfig(),
    # CPU presets: same block structure (2/2/2 enc, 3 mid, 5/6/7 dec convs), narrower.
    "cpu32": UNetConfig(widths=(32, 64, 128), mid_width=256, image_size=32),
    "cpu32-wide": UNetConfig(widths=(32, 64, 128), mid_width=512, image_size=32),
    # Tiny network for tests and SMOKE runs.
    "tiny": UNetConfig(widths=(8, 16, 16), mid_width=32, image_size=16),
}


def preset(name: str, **overrides) -> UNetConfig:
    """The UNetConfig of preset ``name`` (see PRESETS) with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; known: {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def forward_flops(config: UNetConfig, size: int, stop_after_mid: bool = False) -> float:
    """Multiply-adds x 2 of the conv layers for one image of size x size (norms/ReLUs ignored)."""
    c, L, W = config, config.levels, config.widths
    flops, s = 0.0, size

    def block(cin, cout, n, s, last_out=None):
        f = 0.0
        for i in range(n):
            co = last_out if (last_out and i == n - 1) else cout
            f += 2 * 9 * (cin if i == 0 else cout) * co * s * s
        return f
    for i in range(L):
        flops += block(c.in_channels if i == 0 else W[i - 1], W[i], c.enc_convs[i], s)
        s //= 2
    flops += block(W[-1], c.mid_width, c.mid_convs, s)
    if stop_after_mid:
        return flops
    for i in reversed(range(L)):
        below = c.mid_width if i == L - 1 else W[i + 1]
        s *= 2
        flops += 2 * 4 * below * W[i] * (s // 2) ** 2
        flops += block(2 * W[i], W[i], c.dec_convs[i], s, c.in_channels if i == 0 else None)
    return flops
