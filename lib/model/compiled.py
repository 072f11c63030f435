"""Compiled inference: `UNet.walk` through `torch.compile`d blocks, chosen by the size of the work.

Extraction is most of `make figures` on a CPU (phi of 10,000 images x 4 noise draws, several networks), and
compiled blocks run it about twice as fast there (`make bench`, key `phi_compiled_speedup`). Compiling costs
about 20-40 s once per process (each block once, whatever blocks a call keeps; a few seconds when
TorchInductor's on-disk cache is warm), so it pays from a few thousand image-draws. The compiled kernels round
differently from the eager ones (about 1e-7 on phi; the same bits at 1 or 2 threads), so the choice is a pure
function of the call (never of what ran before in the process), and `lib.core.memo` keys say which kernels
computed an entry. Compiled extraction (phi) runs in bf16 where the device is fast at it (COMPILED_BF16; the
cache keys say so too); the denoiser's output for PSNR and the samplers stay float32. Without gradients only:
the samplers' denoising steps are compiled, their projections (gradients through the encoder) stay eager.

LIB_COMPILE: ``auto`` (default: compile calls of at least COMPILE_FROM image-draws; a caller that makes many
small calls decides once on their total), ``on`` (every call), ``off`` (never). Where compiling fails (no C
compiler, an unsupported device) the process warns once and runs eager from then on.
"""
from __future__ import annotations

import os
import warnings
import weakref

import torch

COMPILE_FROM = 2048  # image-draws per call from which LIB_COMPILE=auto compiles the extraction
# compiled extraction (phi, block means) runs under bf16 autocast where the device is fast at it
# (lib.core.device.bf16_supported); lib.representation.phi.extraction_amp says why that is sound
COMPILED_BF16 = True
_state = {"failed": False}
_blocks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compile_mode() -> str:
    """LIB_COMPILE: 'auto', 'on' or 'off' (ValueError naming the variable on anything else)."""
    mode = os.environ.get("LIB_COMPILE", "auto").strip().lower() or "auto"
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"LIB_COMPILE: expected auto, on or off, got {mode!r}")
    return mode


def use_compiled(model, work: int) -> bool:
    """Whether an extraction of ``work`` image-draws on ``model`` runs compiled (see the module's docstring)."""
    mode = compile_mode()
    if mode == "off" or _state["failed"] or not hasattr(model, "walk"):
        return False
    return mode == "on" or int(work) >= COMPILE_FROM


def compiled_blocks(model) -> dict:
    """{block name: torch.compile of that block} for ``model``, made once per model (a weak reference: they go
    with the model). One compiled graph per block, with a symbolic batch size, serves every walk whichever
    blocks it keeps, whether it runs to the end and however many images it holds, so a process compiles each
    block once (measured: the same bits as graphs compiled for one batch size, and an image's rows do not
    depend on the others in its batch)."""
    got = _blocks.get(model)
    if got is None:
        _raise_recompile_limit()
        got = {n: torch.compile(getattr(model, n), dynamic=True) for n in model.block_names}
        _blocks[model] = got
    return got


def _raise_recompile_limit(limit: int = 512) -> None:
    """Each block (and each image size) is one compiled graph of the same code (nn.Sequential.forward); past
    dynamo's default limit of 8 graphs per code a call would silently run eager, with other rounding than its
    cache key says. Raise the limits (their names vary across torch versions)."""
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(cfg, name) and getattr(cfg, name) < limit:
            setattr(cfg, name, limit)


def walk(model, y: torch.Tensor, keep: tuple, inputs: bool = False, full: bool = False):
    """``model.walk(y, keep, inputs, full)`` through the compiled blocks (eager once compiling has failed)."""
    if not _state["failed"]:
        try:
            return model.walk(y, tuple(keep), bool(inputs), bool(full), modules=compiled_blocks(model))
        except Exception as exc:  # a missing compiler or an unsupported backend: eager from now on
            _state["failed"] = True
            warnings.warn(f"compiled extraction failed ({type(exc).__name__}: {str(exc)[:200]}); "
                          "running eager (set LIB_COMPILE=off to skip the attempt)", RuntimeWarning, stacklevel=2)
    return model.walk(y, tuple(keep), bool(inputs), bool(full))
