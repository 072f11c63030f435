"""Compiled inference for phi's extraction: `torch.compile` of `UNet.walk`, chosen by the size of the work.

Extraction is most of `make figures` on a CPU (phi of 10,000 images x 4 noise draws, several networks), and
the compiled trunk runs it about twice as fast there (`make bench`, key `phi_compiled_speedup`); compiling
costs about 20 s once per process (less when TorchInductor's on-disk cache is warm), so it pays from a few
thousand image-draws. The compiled kernels round differently from the eager ones (about 1e-7 on phi), so the
choice is a pure function of the call (never of what ran before in the process), and `lib.core.memo` keys say
which kernels computed an entry.

LIB_COMPILE: ``auto`` (default: compile calls of at least COMPILE_FROM image-draws), ``on`` (every call),
``off`` (never). Where compiling fails (no C compiler, an unsupported device) the process warns once and
runs eager from then on.
"""
from __future__ import annotations

import os
import warnings

import torch

COMPILE_FROM = 2048  # image-draws per call from which LIB_COMPILE=auto compiles the extraction
_state = {"fn": None, "failed": False}


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


def _walk(model, y, keep, inputs, full):
    return model.walk(y, keep, inputs, full)


def _raise_recompile_limit(limit: int = 64) -> None:
    """Each (blocks, inputs, full, batch shape) is one compiled graph; past dynamo's default limit of 8 a call
    would silently run eager, with other rounding than its cache key says. Raise the limit (the name varies
    across torch versions)."""
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name) and getattr(cfg, name) < limit:
            setattr(cfg, name, limit)


def walk(model, y: torch.Tensor, keep: tuple, inputs: bool = False, full: bool = False, compiled: bool = False):
    """``model.walk(y, keep, inputs, full)``, through the compiled function when ``compiled``."""
    if compiled and not _state["failed"]:
        if _state["fn"] is None:
            _raise_recompile_limit()
            _state["fn"] = torch.compile(_walk, dynamic=False)
        try:
            return _state["fn"](model, y, tuple(keep), bool(inputs), bool(full))
        except Exception as exc:  # a missing compiler or an unsupported backend: eager from now on
            _state["failed"] = True
            warnings.warn(f"compiled extraction failed ({type(exc).__name__}: {str(exc)[:200]}); "
                          "running eager (set LIB_COMPILE=off to skip the attempt)", RuntimeWarning, stacklevel=2)
    return model.walk(y, tuple(keep), bool(inputs), bool(full))
