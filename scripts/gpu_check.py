"""Train, extraction and k-means throughput on a GPU: `make gpu-check`.

A thin command over `lib.tools.gpu_check`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from lib.core.checks import run_cli
from lib.core.device import pick_device
from lib.model.unet import PRESETS
from lib.tools.gpu_check import SIZES, device_name, extract_phase, kmeans_phase, peak_tflops, significant, train_phase
from scripts import Parser, arg_type, dataset_arg, device_arg, nonneg_int, out_dir, positive_float, positive_int


def _size_type(full):
    if isinstance(full, str):
        def preset_name(text):
            if text not in PRESETS:
                raise ValueError(f"unknown preset {text!r}; presets: {', '.join(PRESETS)}")
            return text
        return arg_type(preset_name)
    return positive_float if isinstance(full, float) else positive_int


def parser() -> Parser:
    """The arguments: device, dataset, seed, threads, output folder, --quick, and each of `SIZES` as a flag."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (runs on a CPU in seconds)")
    p.add_argument("--device", type=device_arg, default="auto")
    p.add_argument("--out", type=out_dir, default=None, help="working folder (default: a temporary one, deleted)")
    for k, (full, quick) in SIZES.items():
        p.add_argument("--" + k.replace("_", "-"), type=_size_type(full), default=None,
                       help=f"(default {full}; --quick: {quick})")
    p.add_argument("--dataset", type=dataset_arg, default="tuxphoto")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--threads", type=nonneg_int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    return p


def parse_args(argv=None):
    """The arguments, each size not given filled in from `SIZES` (its quick value under --quick)."""
    a = parser().parse_args(argv)
    for k, (full, quick) in SIZES.items():
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else full)
    return a


def main(argv=None) -> dict:
    """Time the train, extraction and k-means phases on the device, printing the record after each; returns it."""
    a = parse_args(argv)
    dev = pick_device(a.device)
    info = {"device": device_name(dev), "torch": torch.__version__, "quick": a.quick, "preset": a.preset,
            "size": a.size, "batch_size": a.batch_size}
    peak, how = peak_tflops(dev, 0.3 if a.quick else 2.0)
    info.update({"peak_bf16_tflops": significant(peak), "peak_source": how})
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        work = Path(a.out) if a.out else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        tr = train_phase(a, dev, work)
        model = tr.pop("model")
        info.update(tr)
        print(json.dumps(info), flush=True)
        ex = extract_phase(a, model, dev, work)
        X = ex.pop("X")
        info.update(ex)
        print(json.dumps(info), flush=True)
        info.update(kmeans_phase(a, X, dev))
    info["train_mfu"] = significant(info["train_tflops"] / peak) if peak else None
    info["extract_mfu"] = significant(info["extract_tflops"] / peak) if peak else None
    info["ok"] = bool(info["extract_complete"] and info["phi_finite"] and info["train_steps"] > 0)
    print(json.dumps(info), flush=True)
    return info


if __name__ == "__main__":
    run_cli(main)
