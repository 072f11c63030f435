"""Continuing a shipped checkpoint on another machine (lib.training.lineage, scripts.train --continue)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.model.checkpoint import load_model, read_tensors
from lib.model.unet import UNet, preset
from lib.training.card import check_log
from lib.training.lineage import descends_from, lineage_of, reestimate_adam

ROOT = Path(__file__).resolve().parents[1]
STEPS = 24  # the uninterrupted run; the shipped leg stops at half


def args(out, cache, **kw):
    base = dict(preset="tiny", dataset="shapes", size=16, n_train=96, n_val=32, batch_size=16,
                total_images=16 * STEPS, ckpt_every=4, log_every=4, amp="false", threads=1, seed=3,
                channels_last="false", schedule="constant")
    base.update(kw)
    a = ["--out", str(out), "--data-cache", str(cache), "--no-progress"]
    for k, v in base.items():
        a += ["--" + k.replace("_", "-"), str(v)]
    return a


def train(*argv, check=True):
    r = subprocess.run([sys.executable, "-m", "scripts.train", *argv], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def ship(run, name, dest, *extra):
    r = subprocess.run([sys.executable, "-m", "scripts.ship", str(run), "--name", name, "--dest", str(dest), *extra],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return Path(dest) / name


def weights(out):
    return read_tensors(Path(out) / "model.safetensors")[0]


def final_eval(out):
    ev = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines() if '"eval"' in line]
    return np.array([r["output"] for r in ev[-1]["psnr"].values()])


@pytest.fixture(scope="module")
def legs(tmp_path_factory):
    """An uninterrupted run, a second seed of it, and the first half shipped with and without Adam's state."""
    d = tmp_path_factory.mktemp("continue")
    cache = d / "cache"
    train(*args(d / "full", cache))
    train(*args(d / "seed4", cache, seed=4))
    train(*args(d / "half", cache, total_images=16 * STEPS // 2))
    with_opt = ship(d / "half", "h_opt", d / "ckpt", "--with-optimizer")
    plain = ship(d / "half", "h", d / "ckpt")
    return d, cache, with_opt, plain


def test_continue_with_optimizer_state_is_bit_identical(legs):
    d, cache, with_opt, _ = legs
    assert Path(str(with_opt) + ".optim.safetensors").is_file()
    r = train(*args(d / "c_opt", cache), "--continue", str(with_opt), "--allow-changes")
    assert "optimizer kept" in r.stdout
    wf, wc = weights(d / "full"), weights(d / "c_opt")
    assert all(torch.equal(wf[k], wc[k]) for k in wf)
    meta = load_model(d / "c_opt" / "model").checkpoint_metadata
    assert [leg["leg"] for leg in meta["lineage"]] == [0, 1]
    assert meta["lineage"][1]["optimizer"] == "kept" and meta["lineage"][1]["start_images"] == 16 * STEPS // 2
    assert meta["lineage"][-1]["end_images"] == meta["images_seen"] == 16 * STEPS
    assert meta["history"][-1]["changed"] == {"total_images": [16 * STEPS // 2, 16 * STEPS]}


def test_continue_with_reestimated_optimizer_is_within_the_seed_spread(legs):
    """Without Adam's state the continuation differs from the uninterrupted run by less than a second seed does."""
    d, cache, _, plain = legs
    r = train(*args(d / "c_plain", cache), "--continue", str(plain), "--allow-changes", "--reestimate-steps", "8")
    assert "re-estimated (last 8 batches at lr 0)" in r.stdout
    full, cont, other = final_eval(d / "full"), final_eval(d / "c_plain"), final_eval(d / "seed4")
    assert not np.array_equal(full, cont)  # it did not silently reuse an optimizer state
    assert np.abs(cont - full).mean() < np.abs(other - full).mean(), (full, cont, other)


def test_log_and_card_keep_every_leg(legs):
    d, cache, with_opt, _ = legs
    out = d / "c_card"
    train(*args(out, cache), "--continue", str(with_opt), "--allow-changes")
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    cont = [r for r in recs if r.get("kind") == "continue"]
    assert len(cont) == 1 and cont[0]["step"] == STEPS // 2 and cont[0]["from"] == str(with_opt)
    assert min(r["step"] for r in recs if "loss" in r) < STEPS // 2 < max(r["step"] for r in recs if "loss" in r)
    check_log(out / "log.jsonl")  # steps never go back across legs
    stem = ship(out, "two_legs", d / "ckpt")
    text = Path(str(stem) + ".md").read_text()
    assert "Lineage: 2 leg(s), 384 images seen in all" in text and "| 1 | 192 → 384 |" in text


def test_rerunning_the_continue_command_resumes_and_another_run_is_refused(legs):
    d, cache, with_opt, plain = legs
    out = d / "c_rerun"
    train(*args(out, cache), "--continue", str(with_opt), "--allow-changes")
    r = train(*args(out, cache), "--continue", str(with_opt), "--allow-changes")
    assert "already continued" in r.stdout
    assert len(load_model(out / "model").checkpoint_metadata["lineage"]) == 2  # no third leg
    other = d / "other"
    train(*args(other, cache, total_images=32))
    r = train(*args(other, cache), "--continue", str(plain), "--allow-changes", check=False)
    assert r.returncode != 0 and "already holds the state of another run" in r.stderr


@pytest.mark.parametrize("kw,field", [(dict(seed=5), "seed"), (dict(n_train=64), "n_train")])
def test_continue_refuses_other_settings(legs, kw, field):
    d, cache, with_opt, _ = legs
    r = train(*args(d / f"bad_{field}", cache, **kw), "--continue", str(with_opt), "--allow-changes", check=False)
    assert r.returncode != 0 and field in r.stderr and "Traceback" not in r.stderr


def test_continue_refuses_changed_schedule_without_allow_changes(legs):
    d, cache, with_opt, _ = legs
    r = train(*args(d / "no_allow", cache), "--continue", str(with_opt), check=False)
    assert r.returncode != 0 and "total_images" in r.stderr and "--allow-changes" in r.stderr


def test_continue_needs_a_checkpoint(tmp_path):
    r = train(*args(tmp_path / "o", tmp_path / "cache"), "--continue", str(tmp_path / "nothing"), check=False)
    assert r.returncode != 0 and "nothing.safetensors not found" in r.stderr and "Traceback" not in r.stderr


def test_continue_on_other_images_is_refused_then_recorded(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"

    def write(offset):
        for c in ("a", "b"):
            (root / c).mkdir(parents=True, exist_ok=True)
            for i in range(20):
                arr = (rng.integers(0, 255, (16, 16, 3)) // 2 + offset).astype(np.uint8)
                Image.fromarray(arr).save(root / c / f"{i:03d}.png")
    write(0)
    cache = tmp_path / "cache"
    kw = dict(dataset=f"folder:{root}", n_train=32, n_val=4)
    train(*args(tmp_path / "a", cache, total_images=32, **kw))
    stem = ship(tmp_path / "a", "a", tmp_path / "ckpt")
    write(100)  # the same names, other pixels
    r = train(*args(tmp_path / "b", cache, total_images=64, **kw), "--continue", str(stem), "--allow-changes",
              check=False)
    assert r.returncode == 0, r.stderr[-2000:]  # --allow-changes: goes on, recorded
    meta = load_model(tmp_path / "b" / "model").checkpoint_metadata
    a_sha = load_model(stem).checkpoint_metadata["lineage"][0]["data_sha256"]
    assert meta["lineage"][-1]["data_sha256"] != a_sha
    assert any("data_sha256" in h["changed"] for h in meta["history"])
    r = train(*args(tmp_path / "c", cache, total_images=32, **kw), "--continue", str(stem), check=False)
    assert r.returncode != 0 and "training images differ" in r.stderr
    moved = tmp_path / "moved"
    root.rename(moved)  # the same images under another path: a changed spec, recorded; the fingerprint decides
    r = train(*args(tmp_path / "d", cache, total_images=64, **{**kw, "dataset": f"folder:{moved}"}),
              "--continue", str(tmp_path / "b" / "model"), check=False)
    assert r.returncode != 0 and "dataset" in r.stderr and "--allow-changes" in r.stderr
    r = train(*args(tmp_path / "d", cache, total_images=64, **{**kw, "dataset": f"folder:{moved}"}),
              "--continue", str(tmp_path / "b" / "model"), "--allow-changes", check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = load_model(tmp_path / "d" / "model").checkpoint_metadata
    assert meta["history"][-1]["changed"]["dataset"] == [f"folder:{root}", f"folder:{moved}"]
    assert meta["lineage"][-1]["data_sha256"] == meta["lineage"][-2]["data_sha256"]  # the same images


def test_reestimate_adam_leaves_the_weights_and_fills_the_moments():
    torch.manual_seed(0)
    model = UNet(preset("tiny", image_size=16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(4, 3, 16, 16)
    reestimate_adam(model, opt, lambda i: (model(x + 0.1 * torch.randn_like(x)) - x).pow(2).sum(), 3)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    st = opt.state[next(iter(model.parameters()))]
    assert int(st["step"]) == 3 and st["exp_avg_sq"].abs().sum() > 0
    assert opt.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="fresh"):
        reestimate_adam(model, opt, lambda i: model(x).sum(), 1)


def test_lineage_of_an_old_checkpoint_and_descent():
    meta = {"train_config": {"seed": 0}, "step": 10, "images_seen": 640, "wall_s": 60.0}
    (leg,) = lineage_of(meta)
    assert leg["start_images"] == 0 and leg["end_images"] == 640 and leg["from_sha256"] is None
    grown = [dict(leg, end_images=1280), {**leg, "leg": 1, "start_images": 1280}]
    assert descends_from(grown, [leg]) and not descends_from([leg], grown)
    assert not descends_from([dict(leg, data_sha256="x")], [leg])


def test_ema_is_kept_beside_the_raw_weights_and_resumes(tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "ema"
    train(*args(out, cache, total_images=16 * 8, ema_decay=0.9, snapshot_every_images=64))
    raw, ema = load_model(out / "model"), load_model(out / "ema" / "model")
    assert ema.checkpoint_metadata["ema"] == {"decay": 0.9, "since_images": 0}
    assert (out / "ema" / "snapshots" / "img000000064.safetensors").is_file()
    diff = max((a - b).abs().max().item() for a, b in zip(raw.parameters(), ema.parameters()))
    assert diff > 0
    train(*args(out, cache, total_images=16 * 12, ema_decay=0.9), "--allow-changes")  # resumes the EMA too
    once = tmp_path / "once"
    train(*args(once, cache, total_images=16 * 12, ema_decay=0.9))
    a, _ = read_tensors(out / "ema" / "model.safetensors")
    b, _ = read_tensors(once / "ema" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
