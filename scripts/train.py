"""Train the blind denoiser: `python -m scripts.train --config configs/tux32.json [--key value ...]`.

Continue a shipped checkpoint as a new leg of its run (on any machine):
`python -m scripts.train --config configs/cifar32-lowlr.json --continue data/checkpoints/cifar32`.

A thin command over `lib.training.trainer`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math

from lib.core.checks import parse_amp, parse_bool, read_json, run_cli
from lib.model.checkpoint import checkpoint_file
from lib.model.unet import PRESETS
from lib.training.lineage import DEFAULT_REESTIMATE_STEPS
from lib.training.recipe import TrainConfig
from lib.training.trainer import Trainer
from scripts import Parser, _dataset, _device, _out_dir, positive_int


def parser() -> Parser:
    """The arguments: --config, one flag per TrainConfig field (overriding the file), and the Trainer's options."""
    p = Parser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="JSON file of TrainConfig fields (command-line flags override it)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "model":
            p.add_argument(flag, type=_arg(_json_object, flag),
                           help='UNetConfig overrides as JSON, e.g. \'{"norm": "batch"}\'')
        elif f.name == "amp":
            p.add_argument(flag, type=_arg(parse_amp, flag), help="auto | true | false (also yes/no, on/off, 1/0)")
        elif f.type in ("bool", bool):
            p.add_argument(flag, type=_arg(parse_bool, flag), help=f"true | false (default {f.default})")
        else:
            typ = {"int": int, "float": float, "str": str}.get(
                f.type if isinstance(f.type, str) else f.type.__name__, str)
            p.add_argument(flag, type=typ, help=f"(default {f.default})")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--continue", dest="continue_from", metavar="CHECKPOINT",
                   help="start from a shipped checkpoint (data/checkpoints/NAME) as a new leg of its run: its weights, "
                        "images seen, data position and lineage (lib.training.lineage); rerun to resume")
    p.add_argument("--reestimate-steps", type=positive_int, default=DEFAULT_REESTIMATE_STEPS, metavar="K",
                   help="with --continue and no NAME.optim.safetensors: re-estimate Adam's moments on the last K "
                        f"batches at lr 0 (default {DEFAULT_REESTIMATE_STEPS})")
    p.add_argument("--allow-changes", action="store_true",
                   help="resume with changed lr/schedule/total_images/amp (recorded in the run's history)")
    return p


def parse_args(argv=None) -> tuple[TrainConfig, dict, bool]:
    """The config, the Trainer's options (allow_changes, continue_from, reestimate_steps) and whether to show
    progress."""
    p = parser()
    a = p.parse_args(argv)
    base = {}
    if a.config:
        try:
            base = read_json(a.config, "--config file")
        except (OSError, ValueError) as e:
            p.error(f"--config: {e}")
        if not isinstance(base, dict):
            p.error(f"--config {a.config}: expected a JSON object of TrainConfig fields, got {type(base).__name__}")
        unknown = set(base) - {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown:
            p.error(f"--config {a.config}: unknown keys {sorted(unknown)}")
    over = {f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig) if getattr(a, f.name) is not None}
    try:
        cfg = TrainConfig(**{**base, **over})
    except ValueError as e:
        p.error(f"{e}" + (f" (config file {a.config} or the command line)" if a.config else ""))
    try:
        check_config(cfg)
    except (ValueError, OSError) as e:
        p.error(f"{e}" + (f" (config file {a.config} or the command line)" if a.config else ""))
    if a.continue_from is not None:
        for ext in (".safetensors", ".json"):
            if not checkpoint_file(a.continue_from, ext).is_file():
                p.error(f"--continue {a.continue_from}: {checkpoint_file(a.continue_from, ext)} not found "
                        f"(give a shipped checkpoint stem such as data/checkpoints/cifar32)")
    if a.reestimate_steps < 1:
        p.error(f"--reestimate-steps: expected a positive number of batches, got {a.reestimate_steps}")
    return cfg, {"allow_changes": a.allow_changes, "continue_from": a.continue_from,
                 "reestimate_steps": a.reestimate_steps}, not a.no_progress


def check_config(cfg: TrainConfig) -> None:
    """What TrainConfig leaves to the run, checked before any work: the preset, the dataset spec, the device, the
    folders, and the counts that must not be negative."""
    if cfg.preset not in PRESETS:
        raise ValueError(f"preset: unknown preset {cfg.preset!r}; presets: {', '.join(PRESETS)}")
    for name, check in (("dataset", _dataset), ("device", _device), ("out", _out_dir), ("data_cache", _out_dir)):
        try:
            check(getattr(cfg, name))
        except (ValueError, OSError) as e:
            raise ValueError(f"{name}: {e}") from None
    for name in ("seed", "snapshot_every_images", "evidence_every_images"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name}: expected an integer >= 0, got {getattr(cfg, name)}")
    for name in ("n_evidence", "lr_step_images"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {getattr(cfg, name)}")
    if not (math.isfinite(cfg.sigma_min) and cfg.sigma_min > 0):
        raise ValueError(f"sigma_min: expected a finite number > 0, got {cfg.sigma_min!r}")


def _arg(parse, flag):
    """An argparse type from a parser ``parse(text, flag)`` that raises ValueError naming ``flag``."""
    def convert(s):
        try:
            return parse(s, flag)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return convert


def _json_object(s: str, flag: str) -> dict:
    try:
        v = json.loads(s)
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag}: not valid JSON ({e})") from None
    if not isinstance(v, dict):
        raise ValueError(f"{flag}: expected a JSON object like '{{\"norm\": \"batch\"}}', got {s!r}")
    return v


def main(argv=None):
    """Train, resume or continue the run the arguments describe."""
    cfg, options, progress = parse_args(argv)
    Trainer(cfg, **options).run(progress=progress)


if __name__ == "__main__":
    run_cli(main)
