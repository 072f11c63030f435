"""Bad inputs and faults across the library and its commands: each case must end in an error whose message
names the file, field or argument at fault, and leave every file on disk as it was (sha256 before and
after). Areas: checkpoint, config, dataset, phi, samplers, analyses, caches, training, shipping, notebook
runner. Tiny model, tiny data; runs in seconds on one thread.

A case is a function ``case(t) -> call`` (or ``(call, guarded paths)``) registered with ``@case(area,
exception, message regex)``; by default every file under the test's tmp folder except ``t.scratch`` and
the module's shared fixtures is guarded. For SystemExit the regex is matched against stderr.
"""
import json
import pickle
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fileguard import snapshot
from lib.core.files import exclusive_lock
from lib.core.hashing import file_sha256
from lib.core.paths import CHECKPOINTS, FIGURES
from lib.data.datasets import load_dataset
from lib.measure import channels as analysis
from lib.measure import clustering, distances, readout
from lib.measure.denoising import denoise
from lib.model.checkpoint import CheckpointError, load_model, read_tensors, save_model
from lib.model.unet import UNet, preset
from lib.publish import runner
from lib.representation import extract
from lib.representation.cache import trained_phi
from lib.representation.phi import phi
from lib.sampling import samplers as sampling
from lib.training import card as ship
from lib.training import trainer as train
from scripts import extract as extract_cli
from scripts import notebooks as notebooks_cli
from scripts import ship as ship_cli
from scripts import train as train_cli

CASES = []


def case(area, exc, match):
    def deco(fn):
        CASES.append(pytest.param(fn, exc, match, id=f"{area}-{fn.__name__}"))
        return fn
    return deco


# ------------------------------------------------------------------------------------------- fixtures
TRAIN = dict(preset="tiny", dataset="shapes", size=16, n_train=64, n_val=8, batch_size=16, total_images=64,
             ckpt_every=2, log_every=1, amp="false", threads=1, seed=3, channels_last=False)


def train_run(out, cache, allow_changes=False, **kw):
    cfg = train.TrainConfig(out=str(out), data_cache=str(cache), **{**TRAIN, **kw})
    return train.Trainer(cfg, allow_changes).run(progress=False)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    torch.manual_seed(0)
    model = UNet(preset("tiny")).eval()
    ckpt = save_model(root / "ckpt" / "m", model, {"dataset": "shapes", "size": 16})
    train_run(root / "run", root / "pool")
    images = (np.random.default_rng(0).random((12, 3, 16, 16)) * 255).astype(np.uint8)
    meta = {"dataset": "random", "split": "test", "size": 16,
            "checkpoint_sha256": file_sha256(str(ckpt) + ".safetensors")}
    extract.extract(model, images, root / "cache", sigmas=(0.0,), n_noise=1, blocks="mid", seed=0, chunk_size=4,
                    amp=False, labels=np.zeros(12, np.int64), meta=meta, progress=False)
    return SimpleNamespace(root=root, model=model, ckpt=ckpt, run=root / "run", cache=root / "cache", images=images)


@pytest.fixture(scope="module", autouse=True)
def repository_unchanged():
    """No case may touch the committed checkpoints or figures."""
    before = snapshot(CHECKPOINTS, FIGURES, skip=[FIGURES / "rendered"])
    yield
    assert snapshot(CHECKPOINTS, FIGURES, skip=[FIGURES / "rendered"]) == before


class T(SimpleNamespace):
    def copy(self, src, name=None):
        """A copy of a shared file or folder (or checkpoint stem) in this test's tmp folder."""
        src = Path(src)
        dst = self.tmp / (name or src.name)
        if src.is_dir():
            shutil.copytree(src, dst)
            return dst
        for f in src.parent.glob(src.name + ".*"):
            shutil.copyfile(f, dst.parent / (dst.name + f.name[len(src.name):]))
        return dst

    def write(self, rel, text):
        p = self.tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
        return p


@pytest.mark.parametrize("make, exc, match", CASES)
def test_bad_input(make, exc, match, tmp_path, shared, monkeypatch, capsys):
    t = T(tmp=tmp_path, scratch=tmp_path / "scratch", s=shared, mp=monkeypatch)
    t.scratch.mkdir()
    made = make(t)
    call, guard = made if isinstance(made, tuple) else (made, [tmp_path, shared.root])
    before = snapshot(*guard, skip=[t.scratch])
    capsys.readouterr()
    with pytest.raises(exc) as info:
        call()
    text = capsys.readouterr().err + str(info.value.code) if exc is SystemExit else str(info.value)
    assert re.search(match, text), f"message {text!r} does not match {match!r}"
    assert snapshot(*guard, skip=[t.scratch]) == before, "files changed"


# ----------------------------------------------------------------------------------------- checkpoint
@case("checkpoint", FileNotFoundError, r"nothere\.safetensors")
def missing_weights(t):
    return lambda: load_model(t.tmp / "nothere")


@case("checkpoint", FileNotFoundError, r"m\.json")
def missing_config(t):
    stem = t.copy(t.s.ckpt)
    (t.tmp / "m.json").unlink()
    return lambda: load_model(stem)


@case("checkpoint", CheckpointError, r"m\.safetensors.*truncated")
def truncated_weights(t):
    stem = t.copy(t.s.ckpt)
    w = t.tmp / "m.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    return lambda: load_model(stem)


@case("checkpoint", CheckpointError, r"m\.json: not a valid checkpoint config")
def corrupt_config(t):
    stem = t.copy(t.s.ckpt)
    (t.tmp / "m.json").write_text('{"config": {"widths": [8, 16')
    return lambda: load_model(stem)


def _tamper(t, fn):
    stem = t.copy(t.s.ckpt)
    w = t.tmp / "m.safetensors"
    tensors, meta = read_tensors(w)
    fn(tensors)
    from safetensors.torch import save_file
    save_file(tensors, str(w), metadata=meta)
    return lambda: load_model(stem)


@case("checkpoint", CheckpointError, r"m\.safetensors: tensor 'mid\.\S+' holds \d+ NaN")
def nan_weights(t):
    def f(ts):
        k = next(k for k in ts if k.startswith("mid.") and ts[k].ndim == 4)
        ts[k][0, 0, 0, 0] = float("nan")
    return _tamper(t, f)


@case("checkpoint", CheckpointError, r"m\.safetensors: tensor '\S+' is stored as torch\.int32")
def int32_weights(t):
    def f(ts):
        k = sorted(ts)[0]
        ts[k] = ts[k].round().to(torch.int32)
    return _tamper(t, f)


def _config_edited(t, key, value):
    """A copy of the tiny checkpoint whose m.json config has ``key`` set to ``value``; loading it."""
    stem = t.copy(t.s.ckpt)
    d = json.loads((t.tmp / "m.json").read_text())
    d["config"][key] = value
    (t.tmp / "m.json").write_text(json.dumps(d))
    return lambda: load_model(stem)


@case("checkpoint", CheckpointError, r"m\.json: config\.image_size is 32 but the network was trained at size 16")
def image_size_disagrees_with_training(t):
    return _config_edited(t, "image_size", 32)


@case("checkpoint", CheckpointError, r"m\.json.*mid_width: expected int, got str '32'")
def string_typed_config_value(t):
    return _config_edited(t, "mid_width", "32")


@case("checkpoint", CheckpointError, r"m\.json.*unknown keys \['colour'\]")
def unknown_config_key(t):
    return _config_edited(t, "colour", 1)


@case("checkpoint", CheckpointError, r"m\.safetensors: config embedded in the weights differs from .*m\.json")
def other_architecture(t):
    stem = t.copy(t.s.ckpt)
    other = save_model(t.scratch / "o", UNet(preset("tiny", mid_width=24)))
    shutil.copyfile(str(other) + ".safetensors", t.tmp / "m.safetensors")
    return lambda: load_model(stem)


@case("checkpoint", FileNotFoundError, r"m\.v2\.safetensors")
def dotted_name_is_literal(t):
    t.copy(t.s.ckpt)  # m.* exists, m.v2.* does not: never load m.safetensors for "m.v2"
    return lambda: load_model(t.tmp / "m.v2")


# --------------------------------------------------------------------------------------------- config
def _parse(t, *argv, config=None):
    a = list(argv)
    if config is not None:
        a = ["--config", str(t.write("c.json", config if isinstance(config, str) else json.dumps(config)))] + a
    return lambda: train_cli.parse_args(a)


@case("config", SystemExit, r"--amp: expected auto, true/yes/on/1 or false/no/off/0, got 'maybe'")
def amp_garbage(t):
    return _parse(t, "--amp", "maybe")


@case("config", SystemExit, r"--channels-last: expected .*got 'maybe'")
def bool_flag_garbage(t):
    return _parse(t, "--channels-last", "maybe")


@case("config", SystemExit, r"size: expected int, got str '32'.*c\.json")
def string_int_in_config(t):
    return _parse(t, config={"size": "32"})


@case("config", SystemExit, r"sigma_max: expected float, got str '1'")
def string_float_in_config(t):
    return _parse(t, config={"sigma_max": "1"})


@case("config", SystemExit, r"channels_last: expected bool, got str 'no'")
def string_bool_in_config(t):
    return _parse(t, config={"channels_last": "no"})


@case("config", SystemExit, r"c\.json.*not valid JSON")
def truncated_config(t):
    return _parse(t, config='{"preset": "tiny", "lr"')


@case("config", SystemExit, r"--config.*not found.*nothere\.json")
def missing_config_file(t):
    return lambda: train_cli.parse_args(["--config", str(t.tmp / "nothere.json")])


@case("config", SystemExit, r"c\.json: expected a JSON object")
def config_not_an_object(t):
    return _parse(t, config=[1, 2])


@case("config", SystemExit, r"c\.json: unknown keys \['colour'\]")
def unknown_config_field(t):
    return _parse(t, config={"colour": 1})


@case("config", SystemExit, r"--model: not valid JSON")
def model_override_not_json(t):
    return _parse(t, "--model", "{norm: batch}")


@case("config", SystemExit, r"--model: expected a JSON object")
def model_override_not_object(t):
    return _parse(t, "--model", "[1]")


@case("config", ValueError, r"sigma_max: 25(\.0)? is far above .*0-255 units")
def sigma_max_in_255_units(t):
    return lambda: train.TrainConfig(sigma_max=25)


@case("config", ValueError, r"n_val: expected a positive integer")
def no_validation_images(t):
    return lambda: train.TrainConfig(n_val=0)


@case("config", ValueError, r"lr: expected a finite number > 0")
def nan_lr(t):
    return lambda: train.TrainConfig(lr=float("nan"))


@case("config", ValueError, r"threads: expected >= 0")
def negative_threads(t):
    return lambda: train.TrainConfig(threads=-1)


@case("config", ValueError, r"LIB_THREADS: expected a positive integer, got 'two'")
def lib_threads_garbage(t):
    from lib.core.device import choose_threads
    t.mp.setenv("LIB_THREADS", "two")
    return lambda: choose_threads(0)


@case("config", ValueError, r"amp: expected auto, .*got 'maybe'")
def autocast_garbage(t):
    from lib.core.device import autocast
    return lambda: autocast("cpu", "maybe")


# -------------------------------------------------------------------------------------------- dataset
@case("dataset", ValueError, r"unknown dataset 'imagenet'")
def unknown_dataset(t):
    return lambda: load_dataset("imagenet:/x", n=4, size=16)


@case("dataset", FileNotFoundError, r"folder: directory '.*nothere' does not exist")
def folder_missing(t):
    return lambda: load_dataset(f"folder:{t.tmp / 'nothere'}", n=4, size=16)


@case("dataset", FileNotFoundError, r"no class sub-folders")
def folder_without_classes(t):
    (t.tmp / "d").mkdir()
    return lambda: load_dataset(f"folder:{t.tmp / 'd'}", n=4, size=16)


@case("dataset", ValueError, r"folder: no images .* under the class folders")
def folder_without_images(t):
    t.write("d/cat/readme.txt", "no images here")
    return lambda: load_dataset(f"folder:{t.tmp / 'd'}", n=4, size=16)


@case("dataset", ValueError, r"cannot decode image .*bad\.png")
def folder_undecodable_image(t):
    t.write("d/cat/bad.png", b"not a png at all")
    return lambda: load_dataset(f"folder:{t.tmp / 'd'}", n=4, size=16, split="test")


def _cifar(t, labels):
    data = np.zeros((len(labels), 3072), np.uint8)
    with open(t.write("c/data_batch_1", b""), "wb") as f:
        pickle.dump({b"data": data, b"labels": list(labels)}, f)
    return lambda: load_dataset(f"cifar10:{t.tmp / 'c'}", n=4, size=32)


@case("dataset", ValueError, r"cifar10: .*data_batch_1: labels must lie in 0\.\.9 .*got 0\.\.12")
def cifar_label_outside_classes(t):
    return _cifar(t, [0, 3, 12, 1])


@case("dataset", ValueError, r"cifar10: .*data_batch_1: labels must lie in 0\.\.9 .*got -1\.\.3")
def cifar_negative_label(t):
    return _cifar(t, [0, -1, 3, 1])


@case("dataset", pickle.UnpicklingError, r"cifar10: .*data_batch_1: refused global (os|posix)\.system")
def cifar_malicious_pickle(t):
    class Evil:
        def __reduce__(self):
            import os
            return os.system, ("true",)
    t.write("c/data_batch_1", pickle.dumps(Evil()))
    return lambda: load_dataset(f"cifar10:{t.tmp / 'c'}", n=4, size=32)


@case("dataset", FileNotFoundError, r"imagenet64: no train batches in .*train_data_batch_1\.npz")
def imagenet_without_batches(t):
    (t.tmp / "i").mkdir()
    return lambda: load_dataset(f"imagenet64:{t.tmp / 'i'}", n=4, size=32)


@case("dataset", ValueError, r"size: expected >= 8, got 7")
def size_too_small(t):
    return lambda: load_dataset("shapes", n=4, size=7)


@case("dataset", ValueError, r"split: expected 'train' or 'test', got 'val'")
def unknown_split(t):
    return lambda: load_dataset("shapes", n=4, size=16, split="val")


@case("dataset", ValueError, r"cifar10: size 12 must divide the native resolution 32")
def size_not_dividing_native(t):
    return lambda: load_dataset(f"cifar10:{t.tmp}", n=4, size=12)


# ------------------------------------------------------------------------------------------------ phi
def _x(n=2):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@case("phi", ValueError, r"sigma: 25(\.0)? is far above .*divide by 255 \(e\.g\. 25 -> 0\.098\)")
def sigma_in_255_units(t):
    return lambda: phi(t.s.model, _x(), 25)


@case("phi", ValueError, r"sigma: 1e\+20 is far above")
def sigma_absurd(t):
    return lambda: phi(t.s.model, _x(), 1e20)


@case("phi", ValueError, r"sigma: expected a finite number >= 0, got -0\.1")
def sigma_negative(t):
    return lambda: phi(t.s.model, _x(), -0.1)


@case("phi", ValueError, r"sigma: expected a finite number >= 0, got nan")
def sigma_nan(t):
    return lambda: phi(t.s.model, _x(), float("nan"))


@case("phi", ValueError, r"images: empty batch")
def phi_empty_batch(t):
    return lambda: phi(t.s.model, torch.zeros(0, 3, 16, 16), 0.0)


@case("phi", ValueError, r"images: contains NaN")
def phi_nan_images(t):
    x = _x()
    x[0, 0, 0, 0] = float("nan")
    return lambda: phi(t.s.model, x, 0.0)


@case("phi", ValueError, r"images: expected 3 channels, got 1")
def phi_grey_images(t):
    return lambda: phi(t.s.model, torch.rand(2, 1, 16, 16), 0.0)


@case("phi", ValueError, r"images: expected values in \[0, 1\]")
def phi_255_images(t):
    return lambda: phi(t.s.model, _x() * 255, 0.0)


@case("phi", ValueError, r"n_noise: expected an integer >= 1, got 0")
def phi_no_noise_draws(t):
    return lambda: phi(t.s.model, _x(), 0.1, n_noise=0)


@case("phi", ValueError, r"block|blocks")
def phi_unknown_block(t):
    return lambda: phi(t.s.model, _x(), 0.0, blocks="middle")


@case("phi", ValueError, r"y: empty batch")
def denoise_empty_batch(t):
    return lambda: denoise(t.s.model, torch.zeros(0, 3, 16, 16))


# ------------------------------------------------------------------------------------------- samplers
@case("samplers", ValueError, r"target: phi holds 32 NaN/inf values")
def nan_target_phi(t):
    return lambda: sampling.self_guided(t.s.model, torch.full((32,), float("nan")), progress=False)


@case("samplers", ValueError, r"target: phi has 7 channels, block 'mid' has 32")
def target_wrong_channels(t):
    return lambda: sampling.self_guided(t.s.model, torch.zeros(7), progress=False)


@case("samplers", ValueError, r"target: no targets")
def empty_target(t):
    return lambda: sampling.self_guided(t.s.model, torch.zeros(0, 32), progress=False)


@case("samplers", ValueError, r"sigma0: 25(\.0)? is far above .*0-255 units")
def sigma0_in_255_units(t):
    return lambda: sampling.AscentSchedule(sigma0=25)


@case("samplers", ValueError, r"schedule: expected a 1-d sequence of sigmas > 0")
def schedule_with_zero(t):
    return lambda: sampling.guided_backward(t.s.model, sampling.flat_start(t.s.model, 1), [1.0, 0.0], torch.zeros(32),
                                            progress=False)


@case("samplers", ValueError, r"schedule: 30(\.0)? is far above")
def schedule_in_255_units(t):
    return lambda: sampling.guided_backward(t.s.model, sampling.flat_start(t.s.model, 1), [30.0, 3.0], torch.zeros(32),
                                            progress=False)


@case("samplers", ValueError, r"n_samples: expected an integer >= 1, got 0")
def no_samples(t):
    return lambda: sampling.self_guided(t.s.model, torch.zeros(32), n_samples=0, progress=False)


@case("samplers", ValueError, r"mask: expected shape \(32,\)")
def mask_wrong_shape(t):
    return lambda: sampling.self_guided(t.s.model, torch.zeros(32), guide=dict(mask=torch.ones(5)), progress=False)


@case("samplers", ValueError, r"preset/form: .*got preset='quick'")
def unknown_preset(t):
    return lambda: sampling.self_guided(t.s.model, torch.zeros(32), preset="quick", progress=False)


@case("samplers", ValueError, r"sigma_L: expected > 0")
def sigma_L_zero(t):
    return lambda: sampling.AscentSchedule(sigma_L=0)


# ------------------------------------------------------------------------------------------- analyses
E = np.zeros((0, 8), np.float32)


@case("analyses", ValueError, r"ytr: need at least two classes")
def probe_one_class(t):
    return lambda: readout.probe(np.random.rand(20, 4), np.zeros(20, int), np.random.rand(5, 4), np.zeros(5, int))


@case("analyses", ValueError, r"v: empty array")
def pr_of_nothing(t):
    return lambda: analysis.participation_ratio(E)


@case("analyses", ValueError, r"phi: empty array")
def channel_stats_of_nothing(t):
    return lambda: analysis.channel_stats(E)


@case("analyses", ValueError, r"X: empty array")
def kmeans_of_nothing(t):
    return lambda: clustering.kmeans(E, 2)


@case("analyses", ValueError, r"X: contains NaN")
def kmeans_of_nan(t):
    return lambda: clustering.kmeans(np.full((10, 4), np.nan), 2)


@case("analyses", ValueError, r"k: expected an integer in \[1, 10\]")
def kmeans_k_zero(t):
    return lambda: clustering.kmeans(np.random.rand(10, 4), 0)



@case("analyses", ValueError, r"k: expected 1 <= k <= 4, got 10")
def too_many_neighbours(t):
    return lambda: distances.nearest_neighbours(np.random.rand(5, 3), [0], 10)


@case("analyses", ValueError, r"truth: expected 2 labels, got 1")
def scores_length_mismatch(t):
    return lambda: clustering.scores([0, 1], [0])


@case("analyses", ValueError, r"N_IMAGES: expected at least 1")
def notebook_without_images(t):
    from lib.notebook import setup as nbsetup
    return lambda: nbsetup.setup("x", str(t.s.ckpt), "shapes", "cpu", n_images=0, figures=t.scratch)


# --------------------------------------------------------------------------------------------- caches
def _ctx(t):
    """What trained_phi needs of a notebook context, matching the shared cache."""
    images = torch.from_numpy(t.s.images).float() / 255
    return SimpleNamespace(model=t.s.model, images=images, data=SimpleNamespace(labels=np.zeros(12, np.int64)),
                           checkpoint=str(t.s.ckpt), dataset="random", size=16, seed=0)


@case("caches", FileNotFoundError, r"phi cache '.*c' exists but has no manifest\.json")
def cache_folder_without_manifest(t):
    (t.tmp / "c").mkdir()
    return lambda: trained_phi(_ctx(t), 0.0, 1, "mid", cache=t.tmp / "c")


@case("caches", ValueError, r"manifest\.json: phi cache manifest is not valid JSON")
def truncated_manifest(t):
    c = t.copy(t.s.cache, "c")
    m = c / "manifest.json"
    m.write_text(m.read_text()[:50])
    return lambda: extract.load_cache(c, "mid", 0.0)


@case("caches", ValueError, r"phi_mid_s0\.npy: not a readable \.npy array")
def truncated_array(t):
    c = t.copy(t.s.cache, "c")
    a = c / "phi_mid_s0.npy"
    a.write_bytes(a.read_bytes()[:100])
    return lambda: extract.load_cache(c, "mid", 0.0)


@case("caches", ValueError, r"phi cache .*: block mid at sigma 0: 1 rows hold NaN/inf \(first: row 3\)")
def nan_rows_in_cache(t):
    c = t.copy(t.s.cache, "c")
    a = np.load(c / "phi_mid_s0.npy", mmap_mode="r+")
    a[3, 5] = np.nan
    a.flush()
    del a
    return lambda: trained_phi(_ctx(t), 0.0, 1, "mid", cache=c)


@case("caches", ValueError, r"manifest\.json: cannot resume, .*'amp': \(False, True\)")
def cache_resumed_with_other_precision(t):
    c = t.copy(t.s.cache, "c")
    return lambda: extract.extract(t.s.model, t.s.images, c, sigmas=(0.0,), n_noise=1, chunk_size=4, amp=True,
                                   progress=False)


@case("caches", ValueError, r"manifest\.json: phi cache manifest lacks \['amp'\]")
def cache_without_recorded_precision(t):
    c = t.copy(t.s.cache, "c")
    m = json.loads((c / "manifest.json").read_text())
    del m["amp"]
    (c / "manifest.json").write_text(json.dumps(m))
    return lambda: extract.load_cache(c, "mid", 0.0)


@case("caches", ValueError, r"phi_mid_s0\.npy: expected float32 \(12, 32\)")
def cache_array_of_other_shape(t):
    c = t.copy(t.s.cache, "c")
    np.save(c / "phi_mid_s0.npy", np.zeros((5, 32), np.float32))
    return lambda: extract.load_cache(c, "mid", 0.0)


@case("caches", ValueError, r"images: empty \(0 images\)")
def extract_nothing(t):
    return lambda: extract.extract(t.s.model, t.s.images[:0], t.tmp / "c", progress=False)


@case("caches", SystemExit, r"--amp: expected auto, .*got 'maybe'")
def extract_amp_garbage(t):
    from lib.core.checks import run_cli
    argv = ["--checkpoint", str(t.s.ckpt), "--dataset", "shapes", "--out", str(t.tmp / "c"), "--amp", "maybe",
            "--n", "4", "--cache-dir", str(t.scratch), "--no-progress"]
    return lambda: run_cli(extract_cli.main, argv)


@case("caches", ValueError, r"sigma 0\.3 not extracted")
def cache_without_sigma(t):
    return lambda: extract.load_cache(t.s.cache, "mid", 0.3)


# ------------------------------------------------------------------------------------------- training
@case("training", FileExistsError, r"run: another process \(pid \d+\) is writing this training run")
def second_trainer_on_same_out(t):
    run = t.copy(t.s.run)
    lock = exclusive_lock(run, "training run")  # held here, as by another trainer
    lock.__enter__()
    guard = [p for p in run.iterdir() if p.name != ".lock"]

    def call():
        try:
            train_run(run, t.scratch, total_images=128)
        finally:
            lock.__exit__(None, None, None)
    return call, guard


@case("training", ValueError, r"state\.safetensors: cannot resume at step 4 with changed settings "
                              r".*'lr': \(0\.001, 0\.5\)"
                              r".*'schedule': \('cosine', 'constant'\).*--allow-changes")
def resume_with_other_lr_and_schedule(t):
    run = t.copy(t.s.run)
    return lambda: train_run(run, t.scratch, lr=0.5, schedule="constant")


@case("training", ValueError, r"cannot resume, the run was started with different settings \{'seed': \(3, 4\)\}")
def resume_with_other_seed(t):
    run = t.copy(t.s.run)
    return lambda: train_run(run, t.scratch, seed=4)


@case("training", ValueError, r"log\.jsonl: line 2 is not JSON")
def damaged_log_line(t):
    run = t.copy(t.s.run)
    lines = (run / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text("\n".join([lines[0], '{"step": 1, "lo', *lines[1:]]) + "\n")
    return lambda: train_run(run, t.scratch)


@case("training", ValueError, r"dataset folder:.*: the train split has no images")
def empty_training_split(t):
    from PIL import Image
    for c in ("a", "b"):  # one image per class: it goes to the test split
        (t.scratch / "d" / c).mkdir(parents=True)
        Image.new("RGB", (16, 16)).save(t.scratch / "d" / c / "0.png")
    return lambda: train_run(t.scratch / "out", t.scratch / "pool", dataset=f"folder:{t.scratch / 'd'}")


@case("training", PermissionError, r"cannot write to the output folder .*run at step 6: .*Read-only file system: "
                                   r".*state\.safetensors'; the last checkpoint there \(step 4\) is intact; "
                                   r"the state at step 6 was saved to "
                                   r".*lib-train-rescue-")
def output_becomes_read_only(t):
    import errno
    run = t.copy(t.s.run)
    real = train.atomic_save_tensors
    t.mp.setenv("TMPDIR", str(t.scratch))
    import tempfile
    t.mp.setattr(tempfile, "tempdir", None)

    def save(path, *a, **k):
        if Path(path).parent == run:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, *a, **k)
    t.mp.setattr(train, "atomic_save_tensors", save)
    guard = [run / "state.safetensors", run / "model.safetensors", run / "model.json"]
    return (lambda: train_run(run, t.scratch, allow_changes=True, total_images=96)), guard


# ------------------------------------------------------------------------------------------- shipping
@case("shipping", FileExistsError, r"--name m: .*already holds \['m\.safetensors', 'm\.json'\].*--force")
def ship_over_existing_name(t):
    t.copy(t.s.ckpt)
    return lambda: ship.ship(t.s.run, "m", t.tmp)


@case("shipping", ValueError, r"--name: expected a plain checkpoint name")
def ship_name_with_path(t):
    return lambda: ship.ship(t.s.run, "../escape", t.tmp / "dest")


@case("shipping", ValueError, r"model\.json: metadata lacks \['dataset', 'size'\]")
def ship_run_without_metadata(t):
    run = t.copy(t.s.run)
    d = json.loads((run / "model.json").read_text())
    d["metadata"] = {}
    (run / "model.json").write_text(json.dumps(d))
    (t.tmp / "dest").mkdir()
    return lambda: ship.ship(run, "x", t.tmp / "dest")


@case("shipping", ValueError, r"log\.jsonl: line \d+ goes back from step 4 to 1 \(two processes wrote this log\?\)")
def ship_log_with_step_reversal(t):
    run = t.copy(t.s.run)
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    (t.tmp / "dest").mkdir()
    return lambda: ship.ship(run, "x", t.tmp / "dest")


@case("shipping", FileExistsError, r"another process \(pid \d+\) is writing this training run")
def ship_run_still_training(t):
    run = t.copy(t.s.run)
    lock = exclusive_lock(run, "training run")
    lock.__enter__()
    guard = [p for p in run.iterdir() if p.name != ".lock"]

    def call():
        try:
            ship.ship(run, "x", t.tmp / "dest")
        finally:
            lock.__exit__(None, None, None)
    return call, guard


@case("shipping", FileNotFoundError, r"nothere.model\.safetensors")
def ship_missing_run(t):
    return lambda: ship.ship(t.tmp / "nothere", "x", t.tmp / "dest")


@case("shipping", SystemExit, r"error: --name m: .*already holds")
def ship_cli_over_existing_name(t):
    from lib.core.checks import run_cli
    t.copy(t.s.ckpt)
    return lambda: run_cli(ship_cli.main, [str(t.s.run), "--name", "m", "--dest", str(t.tmp)])


# ------------------------------------------------------------------------------------- notebook runner
@case("notebooks", ValueError, r"-p FOO_BAR: not a parameter of 01_denoising_sparsity; valid: .*N_IMAGES")
def misspelled_parameter(t):
    return lambda: runner.run(only=["01"], params={"FOO_BAR": 1}, rendered=t.tmp / "r", figures=t.tmp / "f")


@case("notebooks", ValueError, r"-p N_IMAGE: .*did you mean N_IMAGES\?")
def parameter_typo_suggests(t):
    return lambda: runner.run(only=["02"], params={"N_IMAGE": 10}, rendered=t.tmp / "r", figures=t.tmp / "f")


@case("notebooks", SystemExit, r"--only: no notebook matches \['99'\]")
def unknown_notebook(t):
    return lambda: runner.find_notebooks(["99"])


@case("notebooks", ValueError, r"--figures .*figures: a --smoke run \(tiny model\) would overwrite the committed")
def smoke_into_committed_figures(t):
    return lambda: runner.run(only=["01"], smoke=True, rendered=t.tmp / "r", figures=FIGURES)


@case("notebooks", SystemExit, r"error: -p FOO_BAR: not a parameter")
def misspelled_parameter_cli(t):
    from lib.core.checks import run_cli
    return lambda: run_cli(notebooks_cli.main, ["--only", "01", "-p", "FOO_BAR", "1", "--rendered", str(t.tmp / "r"),
                                         "--figures", str(t.tmp / "f")])


def test_enough_cases():
    assert len(CASES) >= 60
    areas = {c.id.split("-")[0] for c in CASES}
    assert areas == {"checkpoint", "config", "dataset", "phi", "samplers", "analyses", "caches", "training",
                     "shipping", "notebooks"}
