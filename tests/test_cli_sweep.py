"""Every argument of every ``scripts.*`` command over a table of bad values (wrong type, out of range, missing or
typo'd path, a file where a folder is wanted, a dangling symbolic link, a duplicate, a smoke run over the committed
outputs): each must exit non-zero with one line ``error: ...`` that names the argument, no traceback, before any
work (the commands' work functions are replaced by tripwires), and leave the repository as it was (git status
of everything but the sources, and the sha256 of every committed checkpoint, figure and the README).

`test_every_argument_has_a_bad_value` fails when a command gains an argument (or a command is added) without a
row in BAD. The commands run in-process through ``run_cli(main, argv)``: the whole sweep takes seconds.
"""
import argparse
import importlib
import os
import pkgutil
import re
import shutil
import subprocess

import pytest

import scripts
from fileguard import snapshot
from lib.core.checks import run_cli
from lib.core.paths import CHECKPOINTS, FIGURES, ROOT

TINY = "data/checkpoints/tiny16"
COMMANDS = sorted(m.name for m in pkgutil.iter_modules(scripts.__path__))


class ReachedWork(BaseException):
    """Raised by a tripwire: a command began its work although an argument was bad."""


# module -> the names (in the module, or "module:attr" elsewhere) that do the work; replaced by tripwires
WORK = {
    "bench": ["bench_core", "bench_train_settings", "bench_contention", "run_sampler_bench", "figures_profile"],
    "bench_sampler": ["run"],
    "check_figures": ["figure_drift"],
    "curves": ["measure_run", "save_curves", "curve_table"],
    "data": ["fetch_cifar10"],
    "evidence": ["default_evidence", "snapshot_curves"],
    "extract": ["extract", "lib.data.pools:open_pool", "lib.model.checkpoint:load_model"],
    "gpu_check": ["peak_tflops", "train_phase", "extract_phase", "kmeans_phase"],
    "notebooks": ["lib.publish.runner:_run"],
    "pool": ["open_pool"],
    "reliance": ["reliance_by_block", "load_model", "load_dataset"],
    "report": ["update_readme", "lib.publish.site:build_site"],
    "screenshot": ["screenshot"],
    "ship": ["ship", "refresh_card"],
    "study": ["run", "summarize"],
    "train": ["Trainer"],
}

# module -> {argument key: tokens} of a valid command line; a row replaces its own argument's tokens
BASE = {
    "curves": {"runs": ["{run}"], "--out": ["--out", "{tmp}/curves"]},
    "data": {"dataset": ["cifar10"], "--dest": ["--dest", "{tmp}/data"]},
    "extract": {"--checkpoint": ["--checkpoint", TINY], "--dataset": ["--dataset", "shapes"],
                "--out": ["--out", "{tmp}/phi"], "--cache-dir": ["--cache-dir", "{tmp}/cache"]},
    "notebooks": {"--only": ["--only", "02"], "--rendered": ["--rendered", "{tmp}/rendered"],
                  "--figures": ["--figures", "{tmp}/figs"]},
    "pool": {"dataset": ["shapes"], "--cache-dir": ["--cache-dir", "{tmp}/cache"]},
    "reliance": {"checkpoints": [TINY], "--dataset": ["--dataset", "shapes"], "--out": ["--out", "{tmp}/rel"]},
    "screenshot": {"--out": ["--out", "{tmp}/shot.png"]},
    "ship": {"run": ["{run}"], "--name": ["--name", "sweep"], "--dest": ["--dest", "{tmp}/dest"]},
    "study": {"command": ["summary"], "--runs-dir": ["--runs-dir", "{tmp}/study"],
              "--out": ["--out", "{tmp}/study-out"]},
    "train": {"--out": ["--out", "{tmp}/train"], "--data-cache": ["--data-cache", "{tmp}/cache"]},
}

FILE = "README.md"            # a file where a folder is wanted
DANGLING = "{tmp}/dangling"   # a symbolic link to nothing
FLAG = "=1"                   # a value given to a switch


def switch(flag):
    return [[flag + FLAG]]


BAD = {
    "bench": {
        "--quick": switch("--quick"), "--skip-sampler": switch("--skip-sampler"),
        "--device": [["--device", "gpu9"], ["--device", "cuda:x"]],
        "--checkpoint": [["--checkpoint", "data/checkpoints/tux23"], ["--checkpoint", DANGLING]],
        "--skip-contention": switch("--skip-contention"), "--skip-train-settings": switch("--skip-train-settings"),
        "--skip-phi-compiled": switch("--skip-phi-compiled"),
        "--compile": switch("--compile"), "--figures": switch("--figures")},
    "bench_sampler": {
        "--checkpoint": [["--checkpoint", "data/checkpoints/nothere"]], "--quick": switch("--quick"),
        "--targets": [["--targets", "0"], ["--targets", "abc"]], "--samples": [["--samples", "-1"]],
        "--seeds": [["--seeds", "0", "0"], ["--seeds", "-1"], ["--seeds", "x"]], "--threads": [["--threads", "-2"]]},
    "check_figures": {
        "--figures": [["--figures", FILE], ["--figures", DANGLING], ["--figures", "{tmp}/nothere"],
                      ["--figures", "{tmp}/figs"],   # not inside a git work tree
                      ["--figures", "docs"]],        # in the repository, but holds no numbers.json
        "--against": [["--against", "nonesuch-rev"], ["--against", "HEAD~100000"], ["--against", ""],
                      ["--against", "-x"], ["--against", "HEAD:README.md"]]},
    "curves": {
        "runs": [["{tmp}/nothere"], ["{run}", "{run}"], ["{tmp}"], [FILE]],
        "--out": [["--out", FILE], ["--out", DANGLING]],
        "--n-test": [["--n-test", "0"], ["--n-test", "2k"]], "--n-train": [["--n-train", "-5"]],
        "--dataset": [["--dataset", "cifar100:/x"], ["--dataset", "folder:{tmp}/nothere"]],
        "--no-measure": [["--no-measure"]], "--also": [["--also", " "], ["--also", "a", "a"]],
        "--snapshots-only": switch("--snapshots-only")},
    "data": {
        "dataset": [["mnist"]], "--dest": [["--dest", FILE], ["--dest", DANGLING]],
        "--archive": [["--archive", "{tmp}/nothere.tar.gz"], ["--archive", "{tmp}"]],
        "--url": [["--url", "ftp://example.org/x"], ["--url", "nohost"]], "--md5": [["--md5", "xyz"]],
        "--timeout": [["--timeout", "0"], ["--timeout", "nan"]], "--quiet": switch("--quiet")},
    "evidence": {
        "--checkpoint": [["--checkpoint", "data/checkpoints/tux23"]],
        "--snapshots": [["--snapshots", "{tmp}/nothere"], ["--snapshots", "{tmp}/empty"],
                        ["--snapshots", "{run}/snapshots"]],  # the last: without --out (never figures/evidence)
        "--out": [["--out", "{tmp}/ev"], ["--snapshots", "{run}/snapshots", "--out", FILE]],
        "-n": [["-n", "0"], ["-n", "many"]]},
    "extract": {
        "--checkpoint": [["--checkpoint", "data/checkpoints/nothere"]],
        "--dataset": [["--dataset", "imagenet:/x"], ["--dataset", "folder:{tmp}/nothere"], ["--dataset", "cifar10"]],
        "--split": [["--split", "val"]], "--n": [["--n", "0"], ["--n", "1e3"]], "--size": [["--size", "4"]],
        "--sigmas": [["--sigmas", "25"], ["--sigmas", "-1"], ["--sigmas", "1.5"], ["--sigmas", "0.1", "0.1"]],
        "--n-noise": [["--n-noise", "0"]], "--blocks": [["--blocks", "middle"], ["--blocks", "mid", "mid"]],
        "--seed": [["--seed", "-1"]], "--out": [["--out", FILE], ["--out", DANGLING]],
        "--chunk-size": [["--chunk-size", "0"]], "--batch-size": [["--batch-size", "-1"]],
        "--device": [["--device", "gpu9"]], "--amp": [["--amp", "maybe"]],
        "--cache-dir": [["--cache-dir", FILE]], "--noise-threads": [["--noise-threads", "-1"]],
        "--threads": [["--threads", "-1"]], "--no-progress": switch("--no-progress"),
        "--chunk-delay": [["--chunk-delay", "-1"]]},
    "gpu_check": {
        "--quick": switch("--quick"), "--device": [["--device", "gpu9"]], "--out": [["--out", FILE]],
        "--train-seconds": [["--train-seconds", "0"], ["--train-seconds", "inf"]],
        "--n-extract": [["--n-extract", "0"]],
        "--unique": [["--unique", "-3"]], "--n-noise": [["--n-noise", "0"]], "--k": [["--k", "0"]],
        "--kmeans-iter": [["--kmeans-iter", "x"]], "--batch-size": [["--batch-size", "0"]],
        "--n-train": [["--n-train", "0"]], "--n-val": [["--n-val", "0"]], "--size": [["--size", "0"]],
        "--chunk-size": [["--chunk-size", "0"]], "--extract-batch": [["--extract-batch", "0"]],
        "--preset": [["--preset", "paper65"]], "--dataset": [["--dataset", "tuxfoto"]], "--seed": [["--seed", "-1"]],
        "--threads": [["--threads", "-1"]], "--no-progress": switch("--no-progress")},
    "notebooks": {
        "--only": [["--only", "99"], ["--only", "02", "02"]],
        "--smoke": [["--smoke", "--figures", "figures"], ["--smoke", "--figures", "figures/02_channel_selectivity"]],
        "--parameter": [["-p", "N_IMAGES", "abc"], ["-p", "N_IMAGES", "10.5"], ["-p", "N_IMAGE", "10"],
                        ["-p", "SMOKE", "maybe"], ["-p", "SIGMA", "0.1", "-p", "SIGMA", "0.2"],
                        ["--only", "02", "-p", "CHECKPOINT", TINY, "--rendered", "{tmp}/r"],  # default figures/
                        ["--only", "02", "-p", "SMOKE", "True", "--figures", "figures"]],
        "--rendered": [["--rendered", FILE], ["--rendered", DANGLING]],
        "--figures": [["--figures", FILE], ["--figures", DANGLING]],
        "--no-html": switch("--no-html"), "--log-output": switch("--log-output"), "--force": switch("--force"),
        "--jobs": [["--jobs", "0"], ["--jobs", "two"], ["--jobs", "-2"]]},
    "pool": {
        "dataset": [["tuxfoto"], ["folder:{tmp}/nothere"], ["imagenet64"]], "--split": [["--split", "val"]],
        "--size": [["--size", "4"], ["--size", "x"]], "--n": [["--n", "0"]], "--seed": [["--seed", "-1"]],
        "--cache-dir": [["--cache-dir", FILE], ["--cache-dir", DANGLING]]},
    "reliance": {
        "checkpoints": [["data/checkpoints/tiny61"], [TINY, TINY], [TINY, "data/checkpoints/tiny16.json"]],
        "--dataset": [["--dataset", "shape"], ["--dataset", "folder:{tmp}/nothere"]],
        "--n": [["--n", "0"]], "--sigmas": [["--sigmas", "25"], ["--sigmas", "1e20"], ["--sigmas", "-1"],
                                             ["--sigmas", "0"], ["--sigmas", "2"], ["--sigmas", "0.2", "0.2"]],
        "--seed": [["--seed", "-1"]], "--out": [["--out", FILE], ["--out", DANGLING]],
        "--threads": [["--threads", "-1"]]},
    "report": {
        "--check": switch("--check"), "--figures": [["--figures", "figurs"], ["--figures", "{tmp}/empty"],
                                                    ["--figures", "{tmp}/figs"]],
        "--readme": [["--readme", "READNE.md"], ["--readme", "{tmp}"]], "--no-site": switch("--no-site")},
    "screenshot": {
        "--out": [["--out", "{tmp}/shot.jpg"], ["--out", "README.md/shot.png"], ["--out", "{tmp}"]],
        "--smoke": [["--smoke", "--out", "figures/explorer/explorer_screenshot.png"]]},
    "ship": {
        "run": [["{tmp}/nothere"], ["{tmp}/empty"]],
        "--name": [["--name", "tiny16.json"], ["--name", "../escape"], ["--name", "x.safetensors"]],
        "--dest": [["--dest", FILE], ["--dest", DANGLING]], "--retrain": [["--retrain", ""]],
        "--force": switch("--force"), "--readout": switch("--readout"),
        "--snapshot": [["--snapshot", "-1"], ["--snapshot", "lots"]],
        "--with-optimizer": [["--snapshot", "64", "--with-optimizer"]],
        "--card-only": [["--card-only"], ["--card-only", "--name", "x"]]},
    "study": {
        "command": [["go"]], "--only": [["--only", "nonesuch"], ["--only", "baseline", "baseline"]],
        "--study": [["--study", "configs/studdy.json"]], "--runs-dir": [["--runs-dir", FILE]],
        "--out": [["--out", FILE]], "--n-final": [["--n-final", "0"]], "--no-progress": switch("--no-progress")},
    "train": {
        "--config": [["--config", "configs/tux23.json"], ["--config", "{tmp}"]],
        "--out": [["--out", FILE], ["--out", DANGLING]], "--preset": [["--preset", "cpu33"]],
        "--model": [["--model", "{{norm: batch}}"], ["--model", "[1]"]],
        "--dataset": [["--dataset", "tuxfoto"], ["--dataset", "folder:{tmp}/nothere"]],
        "--size": [["--size", "0"], ["--size", "32.5"]], "--n-train": [["--n-train", "0"]],
        "--n-val": [["--n-val", "-1"]],
        "--batch-size": [["--batch-size", "0"]], "--lr": [["--lr", "nan"], ["--lr", "-1"]],
        "--schedule": [["--schedule", "weekly"]], "--lr-step-images": [["--lr-step-images", "0"]],
        "--lr-min": [["--lr-min", "0"]], "--warmup-images": [["--warmup-images", "-1"]],
        "--total-images": [["--total-images", "0"]], "--sigma-dist": [["--sigma-dist", "normal"]],
        "--sigma-max": [["--sigma-max", "25"], ["--sigma-max", "0"]], "--sigma-min": [["--sigma-min", "-1"]],
        "--seed": [["--seed", "-1"]], "--ckpt-every": [["--ckpt-every", "0"]], "--log-every": [["--log-every", "0"]],
        "--snapshot-every-images": [["--snapshot-every-images", "-64"]],
        "--snapshot-log": [["--snapshot-log", "maybe"]],
        "--evidence-every-images": [["--evidence-every-images", "-1"]], "--n-evidence": [["--n-evidence", "0"]],
        "--device": [["--device", "gpu9"]], "--amp": [["--amp", "maybe"]],
        "--channels-last": [["--channels-last", "2"]], "--compile": [["--compile", "perhaps"]],
        "--ema-decay": [["--ema-decay", "1.5"]], "--threads": [["--threads", "-1"]],
        "--data-cache": [["--data-cache", FILE], ["--data-cache", DANGLING]],
        "--no-progress": switch("--no-progress"), "--continue": [["--continue", "data/checkpoints/cifar23"]],
        "--reestimate-steps": [["--reestimate-steps", "0"]], "--allow-changes": switch("--allow-changes")},
}


def arguments(parser: argparse.ArgumentParser) -> dict:
    """{key: action} of a parser's arguments: the longest option string, or the positional's name."""
    out = {}
    for act in parser._actions:
        if isinstance(act, argparse._HelpAction):
            continue
        out[max(act.option_strings, key=len) if act.option_strings else act.dest] = act
    return out


def names_of(act) -> list[str]:
    """What a message may call the argument: its option strings, its name, and its config field."""
    names = list(act.option_strings) or [act.dest, act.metavar or act.dest]
    return names + [act.dest, act.dest.replace("_", "-")] + (["-p"] if "-p" in act.option_strings else [])


def test_every_command_has_a_parser_and_the_guard():
    for name in COMMANDS:
        mod = importlib.import_module(f"scripts.{name}")
        assert isinstance(mod.parser(), scripts.Parser), name
        assert "run_cli(main)" in (ROOT / "scripts" / f"{name}.py").read_text(), f"scripts.{name}: not under run_cli"
        assert name in WORK, f"scripts.{name}: name its work functions in WORK"


def test_every_argument_has_a_bad_value():
    missing = [f"scripts.{name} {key}" for name in COMMANDS
               for key in arguments(importlib.import_module(f"scripts.{name}").parser())
               if not BAD.get(name, {}).get(key)]
    assert not missing, f"arguments without a bad-value row in BAD: {missing}"
    stale = [f"scripts.{name} {key}" for name, rows in BAD.items() for key in rows
             if name not in COMMANDS or key not in arguments(importlib.import_module(f"scripts.{name}").parser())]
    assert not stale, f"rows for arguments that no longer exist: {stale}"


ROWS = [pytest.param(name, key, i, row, id=f"{name}-{key.lstrip('-')}-{i}")
        for name, rows in BAD.items() for key, alts in rows.items() for i, row in enumerate(alts)]


def _git_status() -> list[str]:
    """git status of everything a command could write (the sources, edited by people, are left out)."""
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                       text=True)
    if r.returncode:
        return []  # not a git checkout (an sdist): the sha256 snapshot still guards
    src = ("lib/", "scripts/", "tests/", "docs/", "notebooks/", "configs/", "Makefile", "pyproject.toml",
           "environment.yml", ".ci/", ".gitignore")
    return sorted(ln for ln in r.stdout.splitlines() if not ln[3:].startswith(src))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    run = tmp / "run"
    (run / "snapshots").mkdir(parents=True)
    for ext in (".safetensors", ".json"):
        shutil.copyfile(CHECKPOINTS / f"tiny16{ext}", run / f"model{ext}")
        shutil.copyfile(CHECKPOINTS / f"tiny16{ext}", run / "snapshots" / f"img000000064{ext}")
    (tmp / "empty").mkdir()
    (tmp / "figs" / "01_x").mkdir(parents=True)
    (tmp / "figs" / "01_x" / "numbers.json").write_text('{"numbers": {"a": 1}, "run": {}}')
    os.symlink(tmp / "nowhere", tmp / "dangling")
    before = (_git_status(), snapshot(CHECKPOINTS, FIGURES, ROOT / "README.md", skip=[FIGURES / "rendered"]))
    yield {"tmp": str(tmp), "run": str(run)}
    after = (_git_status(), snapshot(CHECKPOINTS, FIGURES, ROOT / "README.md", skip=[FIGURES / "rendered"]))
    assert after[0] == before[0], "the sweep changed the repository (git status)"
    assert after[1] == before[1], "the sweep changed committed checkpoints, figures or the README"


def _argv(name: str, key: str, row: list, fill: dict) -> list[str]:
    base = {k: v for k, v in BASE.get(name, {}).items() if k != key and k not in row}
    if name == "notebooks" and key == "--parameter" and "--rendered" in row:
        base = {}  # rows that test the default figures/
    positional = [t for k, v in base.items() if not k.startswith("-") for t in v]
    if not key.startswith("-"):
        positional = []
    tokens = positional + row + [t for k, v in base.items() if k.startswith("-") for t in v]
    return [t.format(**fill) for t in tokens]


@pytest.mark.parametrize("name, key, i, row", ROWS)
def test_bad_value(name, key, i, row, sweep, monkeypatch, capsys):
    mod = importlib.import_module(f"scripts.{name}")
    act = arguments(mod.parser())[key]

    def tripwire(*a, **k):
        raise ReachedWork(f"scripts.{name}: work began with {row}")
    for w in WORK[name]:
        where, attr = (importlib.import_module(w.split(":")[0]), w.split(":")[1]) if ":" in w else (mod, w)
        monkeypatch.setattr(where, attr, tripwire)
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIB_TRACEBACK", raising=False)
    argv = _argv(name, key, row, sweep)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_cli(mod.main, argv)
    err = capsys.readouterr().err
    if isinstance(e.value.code, str):  # SystemExit("message"): Python prints it as the one line
        err, code = e.value.code + "\n", 1
    else:
        code = e.value.code
    assert code not in (0, None), f"{argv}: exit status {code}"
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{argv}: expected one line, got {err!r}"
    said = [n for n in names_of(act) if re.search(rf"(^|[\s'\"(]){re.escape(n)}($|[\s:'\",)=])", lines[0])]
    assert said, f"{argv}: the message does not name {names_of(act)}: {lines[0]!r}"
