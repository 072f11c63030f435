"""Train the blind denoiser: `python -m scripts.train --config configs/tux32.json [--key value ...]`.

A thin command over `lib.training.trainer`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json

from lib.core.checks import parse_amp, parse_bool, read_json, run_cli
from lib.training.trainer import TrainConfig, Trainer


def parse_args(argv=None) -> TrainConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="JSON file of TrainConfig fields (command-line flags override it)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "model":
            p.add_argument(flag, type=_arg(_json_object, flag), help='UNetConfig overrides as JSON, e.g. \'{"norm": "batch"}\'')
        elif f.name == "amp":
            p.add_argument(flag, type=_arg(parse_amp, flag), help="auto | true | false (also yes/no, on/off, 1/0)")
        elif f.type in ("bool", bool):
            p.add_argument(flag, type=_arg(parse_bool, flag), help=f"true | false (default {f.default})")
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
            p.add_argument(flag, type=typ, help=f"(default {f.default})")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--allow-changes", action="store_true",
                   help="resume with changed lr/schedule/total_images/amp (recorded in the run's history)")
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
    cfg._progress = not a.no_progress
    cfg._allow_changes = a.allow_changes
    return cfg


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
    cfg = parse_args(argv)
    Trainer(cfg, allow_changes=getattr(cfg, "_allow_changes", False)).run(progress=getattr(cfg, "_progress", True))


if __name__ == "__main__":
    run_cli(main)
