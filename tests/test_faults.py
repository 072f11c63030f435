"""Faults that once lost or damaged work silently, each checked for the right behaviour (not just an error):
shipping under a dotted name, smoke runs of the notebooks, the training-data cache after the images change,
--amp off, two trainings on one folder, resuming with other settings, a torn log line, an output folder
that becomes unwritable. The refusals themselves are in test_bad_inputs.py."""
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from fileguard import snapshot
from lib.core.files import exclusive_lock
from lib.core.paths import FIGURES, ROOT
from lib.model.checkpoint import load_model
from lib.publish import runner
from lib.training import card as ship
from lib.training import trainer as train
from scripts import train as train_cli

TRAIN = dict(preset="tiny", dataset="shapes", size=16, n_train=64, n_val=8, batch_size=16, total_images=64,
             ckpt_every=2, log_every=1, amp="false", threads=1, seed=3, channels_last=False)


def train_run(out, cache, allow_changes=False, **kw):
    cfg = train.TrainConfig(out=str(out), data_cache=str(cache), **{**TRAIN, **kw})
    return train.Trainer(cfg, allow_changes).run(progress=False)


def log_records(out):
    return [json.loads(ln) for ln in (Path(out) / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    train_run(root / "run", root / "pool")
    return root / "run"


def test_ship_takes_the_name_literally_and_never_overwrites(run, tmp_path):
    dest = tmp_path / "ckpts"
    ship.ship(run, "m", dest)
    before = snapshot(dest)
    ship.ship(run, "m.v2", dest)  # once taken for "m" + extension ".v2"
    after = snapshot(dest)
    assert {k: v for k, v in after.items() if k in before} == before  # m.* untouched
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        f"{n}{ext}" for n in ("m", "m.v2") for ext in ship.SHIPPED)  # five files each, no staging left
    assert load_model(dest / "m.v2").checkpoint_metadata["step"] == 4
    with pytest.raises(FileExistsError, match="already holds"):
        ship.ship(run, "m.v2", dest)
    ship.ship(run, "m.v2", dest, force=True)
    assert {k: v for k, v in snapshot(dest).items() if k in before} == before and len(list(dest.iterdir())) == 10


def test_ship_name_with_an_extension_is_refused_before_any_work(run, tmp_path, monkeypatch, capsys):
    """Issue 27 case 1: --name tiny16.json --force once deleted all five tiny16.* files and shipped nothing;
    --name foo.json ran every measurement before failing. Now both are refused first, nothing touched."""
    from lib.core.checks import run_cli
    from scripts import ship as ship_cli
    dest = tmp_path / "ckpts"
    ship.ship(run, "m", dest)
    before = snapshot(dest)
    work = []
    monkeypatch.setattr(ship, "held_out_psnr_table", lambda *a, **k: work.append(a) or {})
    for name in ("m.json", "m.safetensors", "foo.json", "m.md"):
        with pytest.raises(ValueError, match=rf"--name {re.escape(name)}: ends in"):
            ship.ship(run, name, dest, force=True)
        with pytest.raises(SystemExit) as e:
            run_cli(ship_cli.main, [str(run), "--name", name, "--dest", str(dest), "--force"])
        err = capsys.readouterr().err
        assert e.value.code != 0 and err.count("\n") == 1 and f"--name {name}: ends in" in err, err
    assert snapshot(dest) == before and not work


def test_ship_a_snapshot_of_a_run_still_training(tmp_path):
    """--snapshot ships a kept snapshot (its weights, its step, the log up to it) while the run holds its lock;
    the current model is refused then, and a snapshot that was not kept is named with the kept ones."""
    out = tmp_path / "run"
    train_run(out, tmp_path / "pool", snapshot_every_images=32)
    with exclusive_lock(out, "training run"):
        with pytest.raises(FileExistsError, match="pid"):
            ship.ship(out, "cur", tmp_path / "dest")
        stem = ship.ship(out, "snap", tmp_path / "dest", snapshot=32)
        with pytest.raises(FileNotFoundError, match=r"kept: \[32, 64\]"):
            ship.ship(out, "none", tmp_path / "dest", snapshot=48)
    meta = load_model(stem).checkpoint_metadata
    assert meta["images_seen"] == 32 and meta["step"] == 2
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "dest" / "snap.log.jsonl").read_text().splitlines()]
    assert steps and max(steps) == 2 and max(r["step"] for r in log_records(out)) == 4
    shipped, kept = load_model(stem).state_dict(), load_model(out / "snapshots" / "img000000032").state_dict()
    assert shipped.keys() == kept.keys() and all(torch.equal(shipped[k], kept[k]) for k in kept)
    assert not all(torch.equal(shipped[k], v) for k, v in load_model(out / "model").state_dict().items())
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(f"snap{e}" for e in ship.SHIPPED)


def test_ship_readout_card(run, tmp_path):
    """--readout adds the class readout (trained phi, untrained phi, pixels) to the card, with numbers in [0, 1]."""
    stem = ship.ship(run, "r", tmp_path, readout=True)
    text = (tmp_path / "r.md").read_text()
    assert "Readout of the class at sigma 0.2" in text
    rows = [ln for ln in text.splitlines() if ln.startswith(("| phi (trained)", "| phi (untrained)", "| pixels"))]
    assert len(rows) == 3
    for ln in rows:
        probe, ci, knn = ln.split("|")[2].split()[0], ln.split("|")[2].split("[")[1], ln.split("|")[3]
        assert 0 <= float(probe) <= 1 and 0 <= float(knn) <= 1 and "," in ci
    assert stem.name == "r"


@pytest.mark.notebook
def test_smoke_run_never_writes_committed_figures_and_keeps_times(tmp_path, monkeypatch):
    nb = new_notebook(cells=[new_code_cell("SMOKE = False\nN = 1", metadata={"tags": ["parameters"]}),
                             new_code_cell("import os, pathlib\nd = pathlib.Path(os.environ['LIB_FIGURES_DIR'])\n"
                                           "d.mkdir(parents=True, exist_ok=True)\n(d / 'fig.png').write_text('x')\n"
                                           "print(d)\nprint(os.environ.get('OMP_WAIT_POLICY'))")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    (tmp_path / "nbs").mkdir()
    import nbformat
    nbformat.write(nb, tmp_path / "nbs" / "98_smoke.ipynb")
    monkeypatch.setattr(runner, "NOTEBOOKS", tmp_path / "nbs")
    rendered = tmp_path / "r"
    rendered.mkdir()
    (rendered / "times.json").write_text(json.dumps({"01_full": {"seconds": 86.0, "ok": True, "smoke": False}}))
    committed = snapshot(FIGURES, skip=[FIGURES / "rendered"])
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    times = runner.run(smoke=True, rendered=rendered, html_export=False)
    assert snapshot(FIGURES, skip=[FIGURES / "rendered"]) == committed
    assert not list((tmp_path / "tmp").iterdir())  # the default temporary figures folder is removed afterwards
    assert set(times) == {"01_full", "98_smoke"} and times["01_full"]["seconds"] == 86.0
    assert json.loads((rendered / "times.json").read_text())["01_full"]["smoke"] is False
    out = nbformat.read(rendered / "98_smoke.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for o in out.cells[-1].outputs)
    assert "PASSIVE" in printed  # kernels wait passively
    assert f"{tmp_path / 'tmp'}/lib-smoke-figures-" in printed  # the default went to a temporary folder


def _folder(root: Path, value: int):
    from PIL import Image
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(11):
            Image.new("RGB", (16, 16), (value + i, value, 255 - value)).save(root / c / f"{i}.png")


def test_training_pool_follows_the_files(tmp_path):
    data = tmp_path / "d"
    _folder(data, 10)
    cfg = train.TrainConfig(dataset=f"folder:{data}", size=16, n_train=18, data_cache=str(tmp_path / "cache"))
    first = np.array(train.cached_images(cfg, 18, "train"))
    assert np.array_equal(np.array(train.cached_images(cfg, 18, "train")), first)  # reused while unchanged
    time.sleep(0.01)
    _folder(data, 200)  # every image replaced, same names
    second = np.array(train.cached_images(cfg, 18, "train"))
    from lib.data.datasets import load_dataset
    assert np.array_equal(second, load_dataset(f"folder:{data}", n=18, size=16, split="train").images)
    assert not np.array_equal(first, second)


def test_pool_follows_files_replaced_keeping_sizes_and_mtimes(tmp_path):
    """Issue 27 case 7 (the pool cache): images replaced by others of the same size, their modification times
    restored (cp -p, a restore, a sync), once kept the stale pool: its key held only paths, sizes and mtimes."""
    import os

    from PIL import Image

    from lib.data.pools import open_pool, pool_ready
    data = tmp_path / "d"
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        for i in range(11):
            Image.new("RGB", (16, 16), (10 + i, 10, 240)).save(data / c / f"{i}.bmp")
    spec, cache = f"folder:{data}", tmp_path / "cache"
    first, _ = open_pool(spec, "train", 16, None, 0, cache, progress=False)
    first = np.array(first)
    stats = {f: f.stat() for f in data.rglob("*.bmp")}
    for f, st in stats.items():
        Image.new("RGB", (16, 16), (200, 30, 5)).save(f)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert not pool_ready(spec, "train", 16, None, 0, cache)
    second, _ = open_pool(spec, "train", 16, None, 0, cache, progress=False)
    from lib.data.datasets import load_dataset
    assert np.array_equal(np.array(second), load_dataset(spec, size=16, split="train").images)
    assert not np.array_equal(first, np.array(second))
    assert pool_ready(spec, "train", 16, None, 0, cache)  # and reused while unchanged


@pytest.mark.parametrize("word, want", [("off", "false"), ("no", "false"), ("0", "false"), ("False", "false"),
                                        ("on", "true"), ("yes", "true"), ("1", "true"), ("auto", "auto")])
def test_amp_words(word, want):
    cfg, _, _ = train_cli.parse_args(["--amp", word, "--device", "cpu", "--threads", "1"])
    assert cfg.amp == want
    if want == "false":
        from lib.core.device import amp_enabled
        assert train.Trainer(cfg).amp is False and not amp_enabled("cpu", word)


def test_second_trainer_on_same_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    argv = ["--out", str(out), "--data-cache", str(tmp_path / "cache"), "--no-progress"]
    for k, v in {**TRAIN, "total_images": 16 * 400, "ckpt_every": 1000}.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    first = subprocess.Popen([sys.executable, "-m", "scripts.train", *argv], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while not ((out / ".lock").is_file() and (out / ".lock").read_text()) and time.time() - t0 < 60:
            time.sleep(0.1)
        r = subprocess.run([sys.executable, "-m", "scripts.train", *argv], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 1, r.stderr
        assert f"another process (pid {first.pid}) is writing this training run" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        first.kill()
        first.wait()


def test_resume_with_changes_is_recorded_not_rewritten(run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    train_run(out, tmp_path / "pool", allow_changes=True, lr=0.5, schedule="constant", total_images=96)
    meta = load_model(out / "model").checkpoint_metadata
    assert meta["step"] == 6 and meta["train_config"]["lr"] == 0.5
    assert meta["history"] == [{"step": 4, "images_seen": 64, "changed": {
        "lr": [0.001, 0.5], "schedule": ["cosine", "constant"], "total_images": [64, 96]}}]
    lrs = {r["step"]: r["lr"] for r in log_records(out) if "lr" in r}
    assert lrs[4] != 0.5 and lrs[5] == lrs[6] == 0.5  # the log shows when the lr changed
    card = ship.card("x", meta, {"0.1": {"input": 1, "output": 2, "blur_oracle": 1.5}}, {})
    assert "resumed at step 4 with changed settings" in card and "lr 0.001 -> 0.5" in card


def test_torn_last_log_line_is_dropped_on_resume(run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    with open(out / "log.jsonl", "a") as f:
        f.write('{"step": 5, "images": 80, "lo')  # killed mid-write
    train_run(out, tmp_path / "pool", allow_changes=True, total_images=96)
    steps = [r["step"] for r in log_records(out) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_unwritable_output_keeps_checkpoint_and_rescues_the_state(run, tmp_path, monkeypatch):
    import errno
    import tempfile
    out = tmp_path / "run"
    shutil.copytree(run, out)
    real = train.atomic_save_tensors

    def save(path, *a, **k):
        if Path(path).parent == out:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(train, "atomic_save_tensors", save)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(PermissionError, match="the last checkpoint there \\(step 4\\) is intact") as e:
        train_run(out, tmp_path / "pool", allow_changes=True, total_images=96)
    rescue = Path(str(e.value).split("was saved to ")[1].split(" ")[0])
    monkeypatch.undo()
    for f in rescue.iterdir():
        shutil.copyfile(f, out / f.name)
    train_run(out, tmp_path / "pool", allow_changes=True, total_images=96)
    uninterrupted = tmp_path / "ref"
    shutil.copytree(run, uninterrupted)
    train_run(uninterrupted, tmp_path / "pool", allow_changes=True, total_images=96)
    a, b = load_model(out / "model"), load_model(uninterrupted / "model")
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k


def test_thread_choice(monkeypatch):
    from lib.core import device
    monkeypatch.setenv("LIB_THREADS", "3")
    assert device.choose_threads(0) == 3 and device.choose_threads(2) == 2
    monkeypatch.delenv("LIB_THREADS")
    monkeypatch.setattr(device, "idle_cores", lambda window_s=0.2: 0.2)
    assert device.choose_threads(0) == 1  # a busy machine: one thread, not one per core
    monkeypatch.setattr(device, "idle_cores", lambda window_s=0.2: 64.0)
    assert device.choose_threads(0) == device.num_threads_default()
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert "OMP_WAIT_POLICY" not in device.kernel_thread_env()  # the user's setting wins
