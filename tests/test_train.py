"""Training: a run killed mid-way and resumed ends with the same weights as an uninterrupted run."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from killutil import kill_when
from lib.model.checkpoint import load_model, read_tensors
from lib.training.recipe import BatchStream, TrainConfig, lr_at
from scripts.train import parse_args

ROOT = Path(__file__).resolve().parents[1]


def args(out, cache, **kw):
    base = dict(preset="tiny", dataset="shapes", size=16, n_train=96, n_val=8, batch_size=16,
                total_images=16 * 30, ckpt_every=5, log_every=5, amp="false", threads=1, seed=3,
                channels_last="false")
    base.update(kw)
    a = ["--out", str(out), "--data-cache", str(cache), "--no-progress"]
    for k, v in base.items():
        a += ["--" + k.replace("_", "-"), str(v)]
    return a


def run_train(argv, **popen):
    return subprocess.Popen([sys.executable, "-m", "scripts.train", *argv], cwd=ROOT, **popen)


def weights(out):
    t, _ = read_tensors(Path(out) / "model.safetensors")
    return t


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    cache = tmp_path / "cache"
    full = tmp_path / "full"
    assert run_train(args(full, cache)).wait() == 0
    part = tmp_path / "part"
    p = run_train(args(part, cache, total_images=16 * 30))
    state = part / "state.safetensors"
    killed = kill_when(p, lambda: 5 <= int(read_tensors(state)[1]["step"]) < 30)  # a mid-run checkpoint exists
    assert killed, "the run finished before it could be killed; make it longer"
    assert int(read_tensors(state)[1]["step"]) < 30
    assert run_train(args(part, cache)).wait() == 0
    wf, wp = weights(full), weights(part)
    assert wf.keys() == wp.keys()
    for k in wf:
        assert torch.equal(wf[k], wp[k]), k
    steps = [json.loads(line)["step"] for line in (part / "log.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == sorted(set(steps)) and steps[-1] == 30  # nothing duplicated or lost
    assert int(read_tensors(state)[1]["step"]) == 30


def test_resume_refuses_other_settings(tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "r"
    assert run_train(args(out, cache, total_images=32)).wait() == 0
    p = run_train(args(out, cache, total_images=64, seed=4), stderr=subprocess.PIPE, text=True)
    _, err = p.communicate()
    assert p.returncode != 0 and "cannot resume" in err


def test_ddp_two_processes(tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           "-m", "scripts.train", *args(out, cache, total_images=16 * 6)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    m = load_model(out / "model")
    assert m.checkpoint_metadata["step"] == 6
    single = tmp_path / "single"
    assert run_train(args(single, cache, total_images=16 * 6)).wait() == 0
    ws, wd = weights(single), weights(out)
    assert {k: v.shape for k, v in ws.items()} == {k: v.shape for k, v in wd.items()}


def test_batch_stream_covers_each_epoch_once():
    s = BatchStream(10, 4, seed=0)
    idx = torch.cat([s.indices(i) for i in range(5)])  # 20 samples = 2 epochs
    assert sorted(idx[:10].tolist()) == list(range(10)) and sorted(idx[10:].tolist()) == list(range(10))


def test_lr_schedules():
    c = TrainConfig(total_images=1000, batch_size=10, schedule="step", lr_step_images=200)
    assert lr_at(c, 0) == c.lr and lr_at(c, 20) == c.lr / 2
    c = TrainConfig(total_images=1000, batch_size=10, schedule="constant", warmup_images=100)
    assert lr_at(c, 0) == pytest.approx(c.lr / 10) and lr_at(c, 4) == pytest.approx(c.lr / 2)
    assert lr_at(c, 9) == lr_at(c, 50) == c.lr
    with pytest.raises(ValueError, match="warmup_images"):
        TrainConfig(warmup_images=-1)
    c = TrainConfig(total_images=1000, batch_size=10, schedule="drop", lr_step_images=200)
    assert lr_at(c, 19) == c.lr and lr_at(c, 20) == lr_at(c, 99) == c.lr / 10
    c = TrainConfig(total_images=1000, batch_size=10)
    assert lr_at(c, 0) == pytest.approx(c.lr) and lr_at(c, 100) == pytest.approx(c.lr_min)


@pytest.mark.parametrize("kw,msg", [(dict(schedule="linear"), "schedule"), (dict(batch_size=0), "batch_size"),
                                    (dict(sigma_dist="cauchy"), "sigma_dist"), (dict(sigma_max=0), "sigma_max")])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(**kw)


def test_cli_config_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"preset": "tiny", "lr": 0.01}))
    cfg, _, _ = parse_args(["--config", str(f), "--lr", "0.02"])
    assert cfg.preset == "tiny" and cfg.lr == 0.02
    f.write_text(json.dumps({"colour": 1}))
    with pytest.raises(SystemExit):
        parse_args(["--config", str(f)])


def test_evidence_logged_during_training(tmp_path):
    out = tmp_path / "ev"
    assert run_train(args(out, tmp_path / "cache", total_images=16 * 4, evidence_every_images=32,
                          n_evidence=24, dataset="tuxphoto")).wait() == 0
    ev = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"evidence"' in line]
    assert [e["images"] for e in ev] == [32, 64]
    assert {"mid_pr_in", "mid_pr_out", "n_kurtotic_channels", "class_nmi", "probe_acc"} <= set(ev[0])


def test_compiled_training_matches_eager(tmp_path):
    """--compile true runs the same steps through torch.compile: the weights match the eager run's closely."""
    cache = tmp_path / "cache"
    kw = dict(total_images=16 * 4, ckpt_every=2, log_every=2)
    assert run_train(args(tmp_path / "eager", cache, **kw)).wait() == 0
    assert run_train(args(tmp_path / "compiled", cache, compile="true", **kw)).wait() == 0
    def losses(run):
        return [json.loads(line)["loss"] for line in (tmp_path / run / "log.jsonl").read_text().splitlines()
                if '"loss"' in line]
    le, lc = losses("eager"), losses("compiled")
    assert len(le) == len(lc) == 2 and all(abs(a - b) <= 0.02 * a for a, b in zip(le, lc))
    we, wc = weights(tmp_path / "eager"), weights(tmp_path / "compiled")
    assert max((we[k] - wc[k]).abs().max().item() for k in we) < 1e-2  # Adam steps are lr-sized whatever the gradient
    assert json.loads((tmp_path / "compiled" / "train_config.json").read_text())["compile"] is True


def test_loguniform_sigmas_and_log_spaced_snapshots():
    """sigma_dist=loguniform spans [sigma_min, sigma_max] evenly in log; snapshot_log keeps 1, 2, 5 x 10^k."""
    from lib.training.recipe import log_milestones, sigma_from_uniform, snapshot_due
    cfg = TrainConfig(sigma_dist="loguniform", sigma_min=0.01, sigma_max=1.0, snapshot_log=True, batch_size=64)
    s = sigma_from_uniform(cfg, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(s, torch.tensor([0.01, 0.1, 1.0]))
    assert log_milestones(2_000_000) == [10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000]
    due = [i for i in range(64, 120_000, 64) if snapshot_due(cfg, i)]
    assert due == [10_048, 20_032, 50_048, 100_032]
    with pytest.raises(ValueError, match="sigma_min"):
        TrainConfig(sigma_dist="loguniform", sigma_min=2.0)


def test_every_shipped_training_config_is_valid_and_trains_into_its_own_folder():
    paths = sorted(p for p in Path("configs").glob("*.json") if p.name != "study.json")
    outs = [TrainConfig(**json.loads(p.read_text())).out for p in paths]
    assert len(paths) >= 10 and len(set(outs)) == len(outs)
