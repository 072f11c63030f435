"""lib.representation.extract (phi cache: equals phi(), resumes after SIGKILL, shards under torchrun), lib.data.pools
(memory-mapped uint8 pool) and scripts.gpu_check --quick on the CPU, on a tiny fake ImageNet 64x64 tree."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from killutil import kill_when
from lib.data.datasets import load_dataset
from lib.data.pools import open_pool, pool_paths
from lib.model.checkpoint import save_model
from lib.model.unet import UNet, preset
from lib.representation.extract import cache_status, extract, load_cache, load_labels, load_manifest
from lib.representation.phi import phi

ROOT = Path(__file__).resolve().parents[1]
N = 44  # 2 train batches of 30 + 14 rows
SIGMAS = [0.0, 0.1, 0.25]


def planar(n, offset=0):
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, (n, 3 * 64 * 64), dtype=np.uint8)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext")
    d = root / "imnet"
    d.mkdir()
    np.savez(d / "train_data_batch_1.npz", data=planar(30, 1), labels=np.arange(1, 31))
    np.savez_compressed(d / "train_data_batch_2.npz", data=planar(14, 2), labels=np.arange(100, 114))
    np.savez(d / "val_data.npz", data=planar(5, 3), labels=np.arange(1, 6))
    torch.manual_seed(0)
    ck = save_model(root / "ck" / "tiny", UNet(preset("tiny")).eval())
    return {"root": root, "data": d, "ck": ck, "spec": f"imagenet64:{d}"}


def cli(tree, out, *extra):
    return [sys.executable, "-m", "scripts.extract", "--checkpoint", str(tree["ck"]), "--dataset", tree["spec"],
            "--split", "train", "--size", "16", "--sigmas", *map(str, SIGMAS), "--n-noise", "3",
            "--blocks", "mid", "enc2", "--seed", "5", "--chunk-size", "6", "--batch-size", "16",
            "--amp", "false", "--threads", "1", "--cache-dir", str(tree["root"] / "cache"), "--out", str(out),
            "--no-progress", *extra]


def arrays(out):
    return {(b, s): np.array(load_cache(out, b, s)) for b in ("mid", "enc2") for s in SIGMAS}


@pytest.fixture(scope="module")
def reference(tree):
    """One uninterrupted single-process run in this process, with the CLI's settings (the resume and
    torchrun tests compare the CLI's results with it bit for bit)."""
    from lib.model.checkpoint import load_model
    out = tree["root"] / "ref"
    imgs, labels = open_pool(tree["spec"], "train", 16, None, 5, tree["root"] / "cache", progress=False)
    res = extract(load_model(tree["ck"]), imgs, out, SIGMAS, n_noise=3, blocks=["mid", "enc2"], seed=5,
                  chunk_size=6, batch_size=16, amp=False, labels=labels, progress=False)
    assert res["complete"]
    return arrays(out)


# ------------------------------------------------------------------------------------------- pool
def test_pool_is_a_memmap_equal_to_load_dataset(tree):
    cache = tree["root"] / "cache_pool"
    imgs, labels = open_pool(tree["spec"], "train", 16, None, 0, cache, progress=False)
    ds = load_dataset(tree["spec"], n=None, size=16, split="train")
    assert isinstance(imgs, np.memmap) and not imgs.flags.writeable
    np.testing.assert_array_equal(imgs, ds.images)
    np.testing.assert_array_equal(labels, ds.labels)
    mtime = pool_paths(tree["spec"], "train", 16, None, 0, cache)["images"].stat().st_mtime_ns
    imgs2, _ = open_pool(tree["spec"], "train", 16, None, 0, cache)  # second call: mapped, not rebuilt
    assert pool_paths(tree["spec"], "train", 16, None, 0, cache)["images"].stat().st_mtime_ns == mtime
    same = open_pool(tree["spec"], "train", 16, N, 7, cache)[0]  # n = all and another seed: the same pool
    assert same.filename == imgs.filename
    v, vl = open_pool(tree["spec"], "test", 64, 3, 0, cache, progress=False)
    np.testing.assert_array_equal(v, load_dataset(tree["spec"], n=3, size=64, split="test").images)
    with pytest.raises(FileNotFoundError):
        open_pool(tree["spec"], "test", 32, None, 0, cache, build=False)


# ----------------------------------------------------------------------------------------- extract
def test_extract_equals_phi_and_rejects_other_settings(tree, tmp_path):
    torch.manual_seed(0)
    model = UNet(preset("tiny")).eval()
    ds = load_dataset(tree["spec"], n=None, size=16)
    out = tmp_path / "c"
    res = extract(model, ds.images, out, SIGMAS, n_noise=3, blocks=["mid", "enc2"], seed=5, chunk_size=7,
                  batch_size=10, amp=False, labels=ds.labels, progress=False)
    assert res["complete"] and res["images"] == N
    for s in SIGMAS:
        direct = phi(model, ds.float(), s, n_noise=3, blocks=["mid", "enc2"], seed=5, batch_size=64)
        for b in ("mid", "enc2"):
            got = load_cache(out, b, s)
            assert isinstance(got, np.memmap) and got.dtype == np.float32 and got.shape == tuple(direct[b].shape)
            np.testing.assert_allclose(got, direct[b].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(load_cache(out, "a4", 0.1), load_cache(out, "mid", 0.1))  # paper alias
    np.testing.assert_array_equal(load_labels(out), ds.labels)
    m = load_manifest(out)
    assert m["N"] == N and m["n_noise"] == 3 and m["seed"] == 5 and m["sigmas"] == SIGMAS and m["n_chunks"] == 7
    again = extract(model, ds.images, out, SIGMAS, n_noise=3, blocks=["mid", "enc2"], seed=5, chunk_size=7,
                    batch_size=10, amp=False, progress=False)
    assert again["chunks"] == 0  # nothing redone
    with pytest.raises(ValueError, match="cannot resume"):
        extract(model, ds.images, out, SIGMAS, n_noise=4, blocks=["mid", "enc2"], seed=5, chunk_size=7,
                amp=False, progress=False)
    with pytest.raises(ValueError, match="not extracted"):
        load_cache(out, "mid", 0.3)


def test_rows_of_unfinished_chunks_are_recomputed(tree, tmp_path):
    """Rows written but not marked done (a kill between flush and mark) are redone, the rest kept."""
    torch.manual_seed(0)
    model = UNet(preset("tiny")).eval()
    imgs = load_dataset(tree["spec"], n=20, size=16).images
    out = tmp_path / "c"
    kw = dict(sigmas=[0.1], n_noise=2, blocks="mid", seed=1, chunk_size=5, amp=False, progress=False)
    extract(model, imgs, out, **kw)
    ref = np.array(load_cache(out, "mid", 0.1))
    done = out / "done" / "rank0-of1.npy"
    np.save(done, np.array([True, False, True, False]))
    a = np.load(out / load_manifest(out)["arrays"]["mid"]["0.1"], mmap_mode="r+")
    a[5:10] = 99.0
    a.flush()
    del a
    st = cache_status(out)
    assert st["missing"] == [1, 3] and not st["complete"]
    with pytest.raises(ValueError, match="not extracted yet"):
        load_cache(out, "mid", 0.1)
    assert extract(model, imgs, out, **kw)["chunks"] == 2
    np.testing.assert_array_equal(load_cache(out, "mid", 0.1), ref)


def test_kill_and_resume_equals_uninterrupted(tree, reference, capsys):
    out = tree["root"] / "killed"
    p = subprocess.Popen(cli(tree, out, "--chunk-delay", "0.6"), cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    killed = kill_when(p, lambda: cache_status(out)["done"] >= 2, timeout=90)
    assert killed, "the extraction finished before it could be killed; make it slower"
    st = cache_status(out)
    assert 2 <= st["done"] < st["n_chunks"]
    from scripts.extract import main
    main(cli(tree, out)[3:])  # resume in this process (the same CLI, without a second interpreter start)
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["complete"] and res["chunks"] == st["n_chunks"] - st["done"]  # only the missing chunks
    got = arrays(out)
    for k in reference:
        np.testing.assert_array_equal(got[k], reference[k], err_msg=str(k))


def test_torchrun_two_processes_equals_single(tree, reference):
    out = tree["root"] / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *cli(tree, out)[1:]]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (out / "done").iterdir()) == ["rank0-of2.npy", "rank1-of2.npy"]
    d0, d1 = (np.load(out / "done" / f"rank{i}-of2.npy") for i in range(2))
    assert not (d0 & d1).any() and (d0 | d1).all()  # each chunk done by exactly one rank
    assert d0.tolist()[:2] == [True, False]  # rank 0 took chunks 0, 2, 4, ...
    got = arrays(out)
    for k in reference:
        np.testing.assert_array_equal(got[k], reference[k], err_msg=str(k))


# --------------------------------------------------------------------------------------- gpu_check
def test_gpu_check_quick_runs_on_cpu(tmp_path, capsys):
    from scripts.gpu_check import main
    info = main(["--quick", "--device", "cpu", "--no-progress", "--threads", "1", "--train-seconds", "0.5",
                 "--out", str(tmp_path / "gc")])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == json.loads(json.dumps(info)) and last["ok"]
    for key in ("train_images_per_s", "extract_images_per_s", "train_tflops", "extract_tflops",
                "peak_bf16_tflops", "train_peak_memory_gb", "kmeans_seconds", "train_mfu"):
        assert isinstance(last[key], (int, float)) and last[key] > 0, key
    assert last["extract_images"] == 96 and last["phi_dims"] == 32 and last["kmeans_clusters_used"] >= 2
