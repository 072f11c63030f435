"""Each idea has one owner (issue 26): the images x noise-draws loop lives in lib/representation/phi.py
(`noise_averaged`) and "denoise in batches, PSNR per sigma" in lib/measure/denoising.py (`denoise`, `psnr_table`).
The tests read lib/ with `ast` and fail on a second definition elsewhere; the detectors are checked on
the shapes the duplicates had before they were removed, so they can fail."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
PHI_OWNER = "lib/representation/phi.py"
PSNR_OWNER = "lib/measure/denoising.py"
RECORDERS = {"BlockRecorder", "block_means", "run_blocks"}     # record a block's activations during a forward
NOISE = {"per_sample_noise", "randn", "randn_like", "normal"}  # draw Gaussian noise
# Known PSNR-per-sigma loops outside the owner, each with the reason it stays.
PSNR_EXCEPTIONS = {
    "lib/training/trainer.py::evaluate": "the trainer's validation PSNR (its own seeds, batches of 128): a running "
                                         "training's eval numbers must stay continuous across legs; not edited",
}
HASH_OWNER = "lib/core/hashing.py"
# Hashes of what is not a file or a network, each with the reason it is not `lib.core.hashing`'s.
HASH_EXCEPTIONS = {
    "lib/training/lineage.py::data_fingerprint": "a training pool's identity (its uint8 bytes and shape)",
    "lib/data/datasets.py::source_fingerprint": "a folder's listing (paths, sizes, mtimes): cheap staleness",
    "lib/data/pools.py::content_fingerprint": "a folder's identity from names, sizes and (sampled) bytes",
    "lib/data/download.py::_md5_of": "CIFAR-10's published checksum is an MD5",
    "lib/data/download.py::_download": "the MD5 of the bytes as they stream in, before they are on disk",
}
# The only definitions of these names.
READOUT_OWNER = "lib/measure/readout.py"
PROBES = {"probe", "ridge_probe", "fit_probe"}
CLUSTERINGS = {"kmeans", "cluster_ami"}
OWNED = {"score": READOUT_OWNER, "Score": READOUT_OWNER, "Readout": READOUT_OWNER,
         "probe_with_controls": READOUT_OWNER, "readout_grid": READOUT_OWNER, "untrained_twin": READOUT_OWNER,
         "digest": HASH_OWNER, "file_sha256": HASH_OWNER, "weights_sha256": HASH_OWNER,
         "phi": PHI_OWNER, "noise_averaged": PHI_OWNER, "block_means": PHI_OWNER,
         "denoise": PSNR_OWNER, "psnr_table": PSNR_OWNER, "noisy_copies": PSNR_OWNER}


def _name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _calls(node) -> set[str]:
    return {_name(n) for n in ast.walk(node) if isinstance(n, ast.Call)}


def _refs(node) -> set[str]:
    """Every name a node mentions (called or passed on, like ``pool.submit(per_sample_noise, ...)``)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
        {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _functions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _noise_helpers(tree) -> set[str]:
    """Functions of the module that draw noise (so a call to them counts as drawing noise)."""
    return {f.name for f in _functions(tree) if _refs(f) & NOISE}


def _loops(fn):
    return [n for n in ast.walk(fn) if isinstance(n, (ast.For, ast.While, ast.comprehension))]


def phi_loops(source: str) -> list[str]:
    """Functions that run a loop, record blocks and draw noise: an images x noise-draws loop."""
    tree = ast.parse(source)
    noise = NOISE | _noise_helpers(tree)
    return [f.name for f in _functions(tree) if _loops(f) and _calls(f) & RECORDERS and _refs(f) & noise]


def psnr_loops(source: str) -> list[str]:
    """Functions with a loop whose body both draws noise and computes a PSNR: PSNR per sigma."""
    tree = ast.parse(source)
    noise = NOISE | _noise_helpers(tree)
    out = []
    for f in _functions(tree):
        for loop in (n for n in ast.walk(f) if isinstance(n, (ast.For, ast.While))):
            body = ast.Module(body=loop.body, type_ignores=[])
            head = loop.iter if isinstance(loop, ast.For) else loop.test
            if "psnr" in _calls(body) and (_refs(body) | _refs(head)) & noise:
                out.append(f.name)
                break
    return out


def lib_files():
    return {str(p.relative_to(ROOT)): p.read_text() for p in sorted(LIB.rglob("*.py"))}


def test_one_phi_loop():
    found = {f"{path}::{fn}" for path, src in lib_files().items() if path != PHI_OWNER for fn in phi_loops(src)}
    assert not found, (f"an images x noise-draws loop outside {PHI_OWNER}: {sorted(found)}; call "
                       f"lib.representation.phi.noise_averaged instead")
    assert "noise_averaged" in phi_loops((ROOT / PHI_OWNER).read_text())


def test_one_psnr_per_sigma():
    found = {f"{path}::{fn}" for path, src in lib_files().items() if path != PSNR_OWNER for fn in psnr_loops(src)}
    extra = found - set(PSNR_EXCEPTIONS)
    assert not extra, (f"a PSNR-per-sigma loop outside {PSNR_OWNER}: {sorted(extra)}; call "
                       f"lib.measure.denoising.psnr_table instead")
    assert set(PSNR_EXCEPTIONS) <= found, \
        f"stale exceptions (fix PSNR_EXCEPTIONS): {sorted(set(PSNR_EXCEPTIONS) - found)}"
    assert "psnr_table" in psnr_loops((ROOT / PSNR_OWNER).read_text())


def test_owned_names_defined_once():
    where = {}
    for path, src in lib_files().items():
        for node in ast.parse(src).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in OWNED:
                where.setdefault(node.name, []).append(path)
    for name, owner in OWNED.items():
        assert where.get(name) == [owner], f"{name}: defined in {where.get(name)}, expected only in {owner}"


def readouts(source: str) -> list[str]:
    """Functions that fit a probe and cluster the same rows: a readout of a representation."""
    return [f.name for f in _functions(ast.parse(source)) if _calls(f) & PROBES and _calls(f) & CLUSTERINGS]


def test_one_readout():
    found = {f"{path}::{fn}" for path, src in lib_files().items() if path != READOUT_OWNER for fn in readouts(src)}
    assert not found, f"a readout outside {READOUT_OWNER}: {sorted(found)}; call lib.measure.readout.score"
    assert readouts(OLD_REPRESENTATION_SCORES) == ["representation_scores"]


OLD_REPRESENTATION_SCORES = '''
def representation_scores(X, data, seed=0, train_X=None, train=None):
    lab = kmeans(X, min(k, len(X)), seed=seed, n_init=4)
    for name, y in factors:
        s = scores(lab, y)
    if train is not None:
        p = probe(train_X, train.labels, X, data.labels, seed=seed)
'''


def hashing_functions(source: str) -> list[str]:
    """Functions that call hashlib: each computes a hash of its own."""
    return [f.name for f in _functions(ast.parse(source))
            if any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "hashlib"
                   for n in ast.walk(f))]


def test_one_owner_of_file_and_weight_hashes():
    found = {f"{path}::{fn}" for path, src in lib_files().items() if path != HASH_OWNER
             for fn in hashing_functions(src)}
    assert not found - set(HASH_EXCEPTIONS), (f"a hash computed outside {HASH_OWNER}: "
                                              f"{sorted(found - set(HASH_EXCEPTIONS))}; use lib.core.hashing")
    assert set(HASH_EXCEPTIONS) <= found, f"stale exceptions: {sorted(set(HASH_EXCEPTIONS) - found)}"
    assert hashing_functions(OLD_FINGERPRINT) == ["weights_fingerprint"]


def test_weights_hash_keeps_the_recorded_16_digit_fingerprints():
    """The curve records and lineages name weights by the 16-digit fingerprint they were written with."""
    import hashlib

    import torch
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.GroupNorm(1, 2))
    h = hashlib.sha256()
    for k, v in m.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    from lib.core.hashing import weights_sha256
    assert weights_sha256(m, 16) == h.hexdigest()[:16] and len(weights_sha256(m)) == 64
    m.to(torch.bfloat16)
    in_bf16 = weights_sha256(m)
    m.float()  # the same values, now stored in float32: another network to run, so another hash
    assert in_bf16 != weights_sha256(m)


OLD_FINGERPRINT = '''
def weights_fingerprint(model):
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
    return h.hexdigest()[:16]
'''


# The duplicates as they were before issue 26 (abridged): the detectors must flag them.
OLD_BLOCK_REPS = '''
def _block_reps(model, x, sigma, blocks, n_noise, seed, batch_size=256):
    for i in range(0, len(x), step):
        y = xb.unsqueeze(1).expand(b, draws, *xb.shape[1:])
        if sigma > 0:
            y = y + sigma * per_sample_noise(b, xb.shape[1:], seed, draws=draws, offset=i).to(dev)
        with BlockRecorder(model, names) as rec:
            out = model(y.reshape(b * draws, *xb.shape[1:]))
'''
OLD_PHI_ROWS = '''
def _noise_parts(pool, b, shape, seed, draws, offset, parts):
    return [pool.submit(per_sample_noise, min(step, b - s), shape, seed, draws, offset + s) for s in range(0, b, step)]

def phi_rows(model, images_u8, offset, sigmas, n_noise, blocks, seed):
    nxt = _noise_parts(pool, min(per, n), shape, seed, n_noise, offset, noise_parts)
    for j, s0 in enumerate(starts):
        for s in sigmas:
            res = block_means(model, y, names)
'''
OLD_EVALUATE = '''
def evaluate(model, val, device, amp, sigmas=EVAL_SIGMAS, seed=1234):
    for i, s in enumerate(sigmas):
        z = torch.randn(val.shape, generator=_seeded(seed, i))
        y = val + s * z
        out = torch.cat(outs).clamp(0, 1)
        res[str(s)] = {"input": psnr(y.clamp(0, 1), val).mean().item(), "output": psnr(out, val).mean().item()}
'''
NOT_A_LOOP = '''
def activation_maps(self, index):
    with BlockRecorder(self.model, [self.block_name], stop=True) as rec:
        self.model(self.images[index:index + 1])

def noisy_denoised(self, index, sigma):
    z = per_sample_noise(1, x.shape[1:], self.seed, offset=index)[:, 0]
    return x + sigma * z, denoise(self.model, y)

def sample_quality(samples, targets):
    return [psnr(s, t) for s, t in zip(samples, targets)]
'''


@pytest.mark.parametrize("src, name", [(OLD_BLOCK_REPS, "_block_reps"), (OLD_PHI_ROWS, "phi_rows")])
def test_phi_loop_detector_flags_the_old_duplicates(src, name):
    assert name in phi_loops(src)


def test_psnr_detector_flags_the_old_duplicate():
    assert psnr_loops(OLD_EVALUATE) == ["evaluate"]


def test_detectors_leave_single_passes_alone():
    assert phi_loops(NOT_A_LOOP) == [] and psnr_loops(NOT_A_LOOP) == []
