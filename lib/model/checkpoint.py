"""Checkpoints: safetensors weights + JSON config beside them (the diffusers pattern).

    save_model("data/checkpoints/tux32", model, metadata={...})
      -> tux32.safetensors (weights; the config is also embedded in its header)
      -> tux32.json        ({"config": {...}, "metadata": {...}})
    model = load_model("data/checkpoints/tux32")

Nothing is ever unpickled. Every write goes to a temporary file in the same folder and is renamed
into place, so a crash never leaves a half-written checkpoint. Errors name the file and the problem;
weights that are not floating point or hold NaN/inf, and a config whose ``image_size`` differs from the
size the network was trained at, are refused. `exclusive_lock` keeps a second process out of a folder
that one is writing (a training run).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from lib.core.files import atomic_path, atomic_write_json
from lib.model.unet import UNet, UNetConfig


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated or does not match its config."""


def atomic_save_tensors(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Save ``tensors`` (detached, contiguous, on the CPU) as a safetensors file written atomically."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


def read_tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a safetensors file (no pickle). Missing -> FileNotFoundError; corrupt -> CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or corrupt?): {e}") from None
    return tensors, meta


def _stem(path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def checkpoint_file(path, ext: str) -> Path:
    """``<stem><ext>`` for a checkpoint stem given with or without its extension. The name is taken
    literally: "tiny16.v2" -> "tiny16.v2.safetensors", never "tiny16.safetensors"."""
    stem = _stem(path)
    return stem.with_name(stem.name + ext)


def save_model(path, model: UNet, metadata: dict | None = None) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json``; returns the stem."""
    stem = _stem(path)
    cfg = model.config.to_dict()
    meta = {"config": json.dumps(cfg, sort_keys=True), "format": "lib.model.unet/1"}
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    atomic_save_tensors(checkpoint_file(stem, ".safetensors"), sd, meta)
    atomic_write_json(checkpoint_file(stem, ".json"), {"config": cfg, "metadata": metadata or {}})
    return stem


def read_config(path) -> tuple[UNetConfig, dict]:
    """Config and metadata from ``<stem>.json``."""
    jpath = checkpoint_file(path, ".json")
    if not jpath.is_file():
        raise FileNotFoundError(f"checkpoint config not found: {jpath}")
    try:
        d = json.loads(jpath.read_text())
        cfg = UNetConfig.from_dict(d["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{jpath}: not a valid checkpoint config: {e}") from None
    meta = d.get("metadata", {})
    trained = meta.get("size") if isinstance(meta, dict) else None
    if trained is not None and trained != cfg.image_size:
        raise CheckpointError(f"{jpath}: config.image_size is {cfg.image_size!r} but the network was trained at "
                              f"size {trained!r} (metadata.size); fix the config")
    return cfg, meta


def _normalized(config: dict) -> dict:
    try:
        return json.loads(json.dumps(UNetConfig.from_dict(config).to_dict()))
    except (TypeError, ValueError):
        return config


def load_model(path, device: str | torch.device = "cpu", eval: bool = True) -> UNet:
    """Build the UNet from ``<stem>.json`` and load ``<stem>.safetensors`` into it, strictly."""
    stem = _stem(path)
    wpath = checkpoint_file(stem, ".safetensors")
    if not wpath.is_file():
        raise FileNotFoundError(f"checkpoint weights not found: {wpath}")
    cfg, meta = read_config(stem)
    tensors, header = read_tensors(wpath)
    # compared after filling defaults, so a field added to UNetConfig later keeps older checkpoints valid
    if "config" in header and _normalized(json.loads(header["config"])) != json.loads(json.dumps(cfg.to_dict())):
        raise CheckpointError(f"{wpath}: config embedded in the weights differs from {checkpoint_file(stem, '.json')}")
    model = UNet(cfg)
    load_state(model, tensors, str(wpath))
    model.checkpoint_metadata = meta
    model.checkpoint_path = str(stem)
    model.to(device)
    return model.eval() if eval else model


def load_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Strict load with a message naming missing, unexpected and mis-shaped tensors."""
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensors (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"shape mismatch: {shapes[:3]}")
        raise CheckpointError(f"{where}: weights do not match the config: " + "; ".join(parts))
    for k in own:
        t = tensors[k]
        if not t.is_floating_point():
            raise CheckpointError(f"{where}: tensor {k!r} is stored as {t.dtype}; weights must be floating point")
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise CheckpointError(f"{where}: tensor {k!r} holds {bad} NaN/inf values (a diverged or damaged run?)")
    model.load_state_dict(tensors, strict=False)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Optimizer state as safetensors-ready tensors ``opt.<param>.<key>`` + its param groups (JSON)."""
    sd = opt.state_dict()
    tensors = {f"opt.{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items()}
    return tensors, {"param_groups": sd["param_groups"]}


def load_optimizer(opt, tensors: dict, meta: dict) -> None:
    """Inverse of `optimizer_tensors`."""
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, i, k = key.split(".", 2)
            state.setdefault(int(i), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
