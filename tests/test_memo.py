"""The content-keyed cache (lib.core.memo): a hit returns exactly what the computation gave, other inputs are
other entries, a damaged entry is refused and recomputed, two processes compute one entry once."""
import json
import multiprocessing as mp
import time

import numpy as np
import pytest
import torch

from lib.core import memo
from lib.measure import readout
from lib.representation import phi as phimod


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE", str(tmp_path / "memo"))
    return tmp_path / "memo"


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = phimod.noise_averaged

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(phimod, "noise_averaged", spy)
    return calls


def images(n, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_phi_hit_is_the_computed_result(tiny, cache, counted):
    x = images(phimod.MEMO_FROM)
    a = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    b = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    assert len(counted) == 1 and torch.equal(a, b) and a.dtype == b.dtype == torch.float32
    assert len(list((cache / "phi").glob("*.npz"))) == 1
    blocks, ins = phimod.phi(tiny, x, 0.2, 2, ["mid", "enc1"], seed=0, inputs=True)
    again, ins2 = phimod.phi(tiny, x, 0.2, 2, ["mid", "enc1"], seed=0, inputs=True)
    assert len(counted) == 2 and torch.equal(blocks["enc1"], again["enc1"]) and torch.equal(ins["mid"], ins2["mid"])
    assert torch.equal(blocks["mid"], a)


def test_other_inputs_are_other_entries(tiny, cache, counted):
    x = images(phimod.MEMO_FROM)
    base = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    y = x.clone()
    y[3, 0, 0, 0] += 1e-3                                     # one pixel of one image
    phimod.phi(tiny, y, 0.2, 2, "mid", seed=0)
    phimod.phi(tiny, x, 0.2, 2, "mid", seed=1)                # another seed
    phimod.phi(tiny, x, 0.1, 2, "mid", seed=0)                # another sigma
    phimod.phi(tiny, x, 0.2, 3, "mid", seed=0)                # more draws
    with torch.no_grad():
        next(tiny.parameters()).view(-1)[0] += 1e-4           # other weights
    other = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    assert len(counted) == 6 and not torch.equal(other, base)
    assert len(list((cache / "phi").glob("*.npz"))) == 6


def test_small_batches_and_grad_are_not_cached(tiny, cache, counted):
    phimod.phi(tiny, images(phimod.MEMO_FROM - 1), 0.2, 2, "mid", seed=0)
    phimod.phi(tiny, images(phimod.MEMO_FROM), 0.2, 2, "mid", seed=0, grad=True)
    assert not (cache / "phi").exists() or not list((cache / "phi").glob("*.npz"))


def test_off_writes_nothing(tiny, cache, counted, monkeypatch):
    monkeypatch.setenv("LIB_CACHE", "off")
    x = images(phimod.MEMO_FROM)
    phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    assert len(counted) == 2 and not cache.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "swap"])
def test_damaged_entry_is_refused_and_recomputed(tiny, cache, counted, capsys, damage):
    x = images(phimod.MEMO_FROM)
    a = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    (entry,) = (cache / "phi").glob("*.npz")
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "garbage":
        entry.write_bytes(b"not a zip file")
    else:  # another key's entry under this name
        phimod.phi(tiny, x, 0.2, 2, "mid", seed=5)
        (other,) = [p for p in (cache / "phi").glob("*.npz") if p != entry]
        entry.write_bytes(other.read_bytes())
        counted.clear()
        counted.append(1)
    capsys.readouterr()
    b = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    assert len(counted) == 2 and torch.equal(a, b)
    assert "cache: refused" in capsys.readouterr().err
    c = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)             # the replaced entry serves again
    assert len(counted) == 2 and torch.equal(a, c)


def test_json_entries(cache):
    rng = np.random.default_rng(0)
    Xtr, Xte = rng.normal(size=(120, 8)), rng.normal(size=(60, 8))
    ytr, yte = np.arange(120) % 3, np.arange(60) % 3
    Xtr[:, 0] += ytr
    a = readout.score(Xte, yte, Xtr, ytr, fast=True)
    assert len(list((cache / "score").glob("*.json"))) == 1
    b = readout.score(Xte, yte, Xtr, ytr, fast=True)
    assert a == b and isinstance(a.degenerate, bool)
    readout.score(Xte, yte[::-1].copy(), Xtr, ytr, fast=True)   # other labels: another entry
    assert len(list((cache / "score").glob("*.json"))) == 2
    (entry,) = [p for p in (cache / "score").glob("*.json") if json.loads(p.read_text())["value"] == vars(a)]
    entry.write_text('{"key": 1')
    assert readout.score(Xte, yte, Xtr, ytr, fast=True) == a


def _slow_entry(folder, marks, out):
    import os
    os.environ["LIB_CACHE"] = folder

    def compute():
        with open(marks, "a") as f:
            f.write("x")
        time.sleep(1.0)
        return {"v": np.arange(5.0)}
    out.put(memo.memo_arrays("test", {"k": 1}, compute)["v"].tolist())


def test_two_processes_compute_once(tmp_path):
    marks = tmp_path / "marks"
    q = mp.get_context("spawn").Queue()
    ps = [mp.get_context("spawn").Process(target=_slow_entry, args=(str(tmp_path / "memo"), str(marks), q))
          for _ in range(2)]
    for p in ps:
        p.start()
    got = [q.get(timeout=120) for _ in ps]
    for p in ps:
        p.join(60)
    assert got == [[0.0, 1.0, 2.0, 3.0, 4.0]] * 2
    assert marks.read_text() == "x"


def test_digest_is_content():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert memo.digest(a) == memo.digest(torch.from_numpy(a.copy()))
    assert memo.digest(a) != memo.digest(a.astype(np.float64))
    assert memo.digest(a) != memo.digest(a.reshape(3, 2))
    assert memo.digest({"a": 1, "b": [1, 2]}) == memo.digest({"b": [1, 2], "a": 1})
    with pytest.raises(TypeError, match="cannot key"):
        memo.digest(object())


def test_sampler_hit_is_the_run(tiny, cache):
    from lib.sampling import samplers as S
    x = images(2)
    results, states, rows = [], [], []
    for _ in range(2):
        g = torch.Generator().manual_seed(3)
        tr = S.Tracker(tiny, x, n_samples=2, every=2, n_noise=2)
        r = S.self_guided(tiny, x, 2, preset="fast", generator=g, callback=tr, progress=False,
                          schedule=None, projection=dict(iters=1))
        results.append(r)
        states.append(g.get_state())
        rows.append(tr.rows)
    a, b = results
    assert len(list((cache / "samples").glob("*.npz"))) == 1
    assert torch.equal(a.samples, b.samples) and torch.equal(a.sigmas, b.sigmas)
    assert torch.equal(a.phi_rel_err, b.phi_rel_err) and a.nfe == b.nfe and a.info == b.info
    assert torch.equal(states[0], states[1]) and rows[0] == rows[1] and rows[0]
    other = S.self_guided(tiny, x, 2, preset="fast", generator=torch.Generator().manual_seed(4), progress=False,
                          projection=dict(iters=1))
    assert not torch.equal(other.samples, a.samples)
    assert len(list((cache / "samples").glob("*.npz"))) == 2


def test_probe_fit_rebuilt_from_the_cache_predicts_as_fitted(cache):
    rng = np.random.default_rng(1)
    ytr, yte = np.arange(300) % 3, np.arange(90) % 3
    Xtr, Xte = rng.normal(size=(300, 6)) + ytr[:, None] * 0.7, rng.normal(size=(90, 6)) + yte[:, None] * 0.7
    a = readout.fit_probe(Xtr, ytr, seed=0)
    b = readout.fit_probe(Xtr, ytr, seed=0)
    assert len(list((cache / "probe_fit").glob("*.npz"))) == 1
    _, std, _, _, _ = readout._train_rows(Xtr, ytr)
    fitted, train_acc, best, cv = readout._fit_logistic(std, ytr, 0, readout.PROBE_CS, 3, 300, readout.PROBE_CV_ROWS)
    direct = fitted.predict((Xte - a.mu) / a.sd)
    assert np.array_equal(a.predict(Xte), direct) and np.array_equal(b.predict(Xte), direct)
    assert a.info == b.info and a.info["C"] == best and a.info["cv_accuracy"] == cv
    assert a.train_accuracy == b.train_accuracy == train_acc
    assert readout.knn_accuracy(Xtr, ytr, Xte, yte) == readout.knn_accuracy(Xtr, ytr, Xte, yte)
    assert readout.ridge_probe(Xtr, ytr, Xte, yte) == readout.ridge_probe(Xtr, ytr, Xte, yte)
    assert {p.parent.name for p in cache.glob("*/*.json")} == {"knn", "ridge"}
