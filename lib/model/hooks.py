"""Record block activations with forward hooks (after baukit's nethook).

    with BlockRecorder(model, ["mid"], stop=True) as rec:
        model(y)            # stops after `mid`; code after this line inside the `with` does not run
    a4 = rec.outputs["mid"]

The hooks are always removed on exit, also after an exception.
"""
from __future__ import annotations

import torch
from torch import nn

from lib.model.unet import block_aliases


class StopForward(Exception):
    """Raised by a hook to end the forward pass after the last requested block."""


def resolve_blocks(model: nn.Module, blocks) -> list[str]:
    """Map block names or the paper's aliases (a1..a6) to module names, in forward order."""

    if isinstance(blocks, str):
        blocks = [blocks]
    blocks = list(blocks)
    if not blocks:
        raise ValueError("blocks: expected at least one block name")
    names = list(getattr(model, "block_names", [n for n, _ in model.named_children()]))
    levels = getattr(getattr(model, "config", None), "levels", 3)
    aliases = block_aliases(levels)
    out = []
    for b in blocks:
        name = aliases.get(b, b)
        if name not in names:
            raise ValueError(f"blocks: unknown block {b!r}; expected one of {names} or {sorted(aliases)}")
        if name not in out:
            out.append(name)
    return sorted(out, key=names.index)


class BlockRecorder:
    """Context manager recording inputs/outputs of named blocks.

    grad: keep the autograd graph of the recorded tensors (else they are detached).
    stop: raise StopForward after the last requested block (in forward order); the `with` swallows it.
    inputs: also record each block's input (the concatenated skip+upsampled tensor for decoders).
    """

    def __init__(self, model: nn.Module, blocks, grad: bool = False, stop: bool = False, inputs: bool = False):
        self.model = model
        self.blocks = resolve_blocks(model, blocks)
        self.grad, self.stop, self.record_inputs = grad, stop, inputs
        self.outputs: dict[str, torch.Tensor] = {}
        self.inputs: dict[str, torch.Tensor] = {}
        self._handles = []

    def _hook(self, name):
        last = name == self.blocks[-1]

        def hook(module, args, output):
            keep = (lambda t: t) if self.grad else (lambda t: t.detach())
            self.outputs[name] = keep(output)
            if self.record_inputs:
                self.inputs[name] = keep(args[0])
            if self.stop and last:
                raise StopForward()
        return hook

    def __enter__(self):
        modules = dict(self.model.named_modules())
        try:
            for name in self.blocks:
                self._handles.append(modules[name].register_forward_hook(self._hook(name)))
        except Exception:
            self.close()
            raise
        return self

    def close(self):
        """Remove the hooks (the recorded tensors stay)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return exc_type is not None and issubclass(exc_type, StopForward)

    def __getitem__(self, name):
        return self.outputs[name]


def run_blocks(model: nn.Module, x: torch.Tensor, blocks, grad: bool = False, stop: bool = True,
               inputs: bool = False) -> BlockRecorder:
    """Run ``model(x)`` recording ``blocks``; stops after the last one unless ``stop=False``."""
    with BlockRecorder(model, blocks, grad=grad, stop=stop, inputs=inputs) as rec:
        model(x)
    return rec


class ReplaceOutput:
    """Context manager replacing one block's output by ``fn(output)`` during forward passes (an ablation):

        with ReplaceOutput(model, "mid", lambda a: a.mean((2, 3), keepdim=True).expand_as(a)):
            out = model(y)     # the decoder sees only the middle block's spatial means
    """

    def __init__(self, model: nn.Module, block: str, fn):
        (self.block,) = resolve_blocks(model, block)
        self.model, self.fn, self._handle = model, fn, None

    def __enter__(self):
        module = dict(self.model.named_modules())[self.block]
        self._handle = module.register_forward_hook(lambda m, args, output: self.fn(output))
        return self

    def __exit__(self, exc_type, exc, tb):
        self._handle.remove()
        return False


def block_channels(model: nn.Module, blocks="mid") -> dict[str, int]:
    """Channel count of each block in ``blocks`` (one forward on a zero input of the network's smallest size;
    ValueError for an unknown block)."""
    names = resolve_blocks(model, blocks)
    d = model.config.downsampling
    x = torch.zeros(1, model.config.in_channels, d, d, device=next(model.parameters()).device)
    with torch.no_grad():
        out = run_blocks(model, x, names)
    return {k: int(v.shape[1]) for k, v in out.outputs.items()}


def count_hooks(model: nn.Module) -> int:
    """Number of forward hooks registered anywhere in ``model`` (for tests: must be 0 after use)."""
    return sum(len(m._forward_hooks) for m in model.modules())
