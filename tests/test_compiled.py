"""The compiled extraction (lib.model.compiled): `UNet.walk` is the forward pass, the compiled trunk gives eager's
phi to rounding and the same bits whatever the batch, the policy reads LIB_COMPILE, a failed compile
falls back to eager with a warning, and the cache keeps compiled and eager entries apart."""
import warnings

import pytest
import torch

from lib.model import compiled
from lib.model.hooks import BlockRecorder, run_blocks
from lib.representation import phi as phimod


def images(n, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setattr(compiled, "_state", {"failed": False})
    monkeypatch.setattr(compiled, "_blocks", compiled.weakref.WeakKeyDictionary())
    monkeypatch.setattr(compiled, "COMPILED_BF16", False)  # float32: compared with eager to rounding


def test_walk_is_the_forward_pass_and_keeps_the_hooks_block_means(tiny):
    y = images(3)
    with torch.no_grad():
        out, outs, ins = tiny.walk(y, ("enc1", "mid"), inputs=True)
        rec = run_blocks(tiny, y, ["enc1", "mid"], stop=False, inputs=True)
        assert torch.equal(out, tiny(y))
    for k in ("enc1", "mid"):
        assert torch.equal(outs[k], rec.outputs[k].float().mean(dim=(2, 3)))
        assert torch.equal(ins[k], rec.inputs[k].float().mean(dim=(2, 3)))


def test_walk_stops_after_the_last_kept_block(tiny):
    seen = []
    h = tiny.dec3.register_forward_hook(lambda *a: seen.append(1))
    try:
        with torch.no_grad():
            out, outs, _ = tiny.walk(images(2), ("mid",), full=False)
    finally:
        h.remove()
    assert out is None and list(outs) == ["mid"] and not seen
    with BlockRecorder(tiny, "mid"):
        pass


def test_policy_reads_lib_compile(tiny, monkeypatch, fresh_state):
    monkeypatch.delenv("LIB_COMPILE", raising=False)
    assert not compiled.use_compiled(tiny, compiled.COMPILE_FROM - 1)
    assert compiled.use_compiled(tiny, compiled.COMPILE_FROM)
    monkeypatch.setenv("LIB_COMPILE", "off")
    assert not compiled.use_compiled(tiny, 10 ** 9)
    monkeypatch.setenv("LIB_COMPILE", "on")
    assert compiled.use_compiled(tiny, 1)
    assert not phimod.compiled_extraction(tiny, 10, 4, [0.2], grad=True)  # never with grad
    monkeypatch.setenv("LIB_COMPILE", "sometimes")
    with pytest.raises(ValueError, match="LIB_COMPILE"):
        compiled.use_compiled(tiny, 1)


def test_compiled_phi_is_eager_phi_to_rounding_and_batch_independent(tiny, fresh_state):
    x = images(40)
    eager = phimod.noise_averaged(tiny, x, [0.2, 0.0], 4, ["enc1", "mid"], 0, 64, compiled=False)
    fast = phimod.noise_averaged(tiny, x, [0.2, 0.0], 4, ["enc1", "mid"], 0, 64, compiled=True)
    assert not compiled._state["failed"], "the compiled path fell back to eager"
    for e, f in zip(eager, fast):
        for k in ("enc1", "mid"):
            torch.testing.assert_close(f.outputs[k], e.outputs[k], rtol=1e-5, atol=1e-6)
    # 40 images are batches of 16, 16 and 8 (one graph, a symbolic batch size): 8 images alone give the same bits
    part = phimod.noise_averaged(tiny, x[:8], [0.2, 0.0], 4, ["enc1", "mid"], 0, 64, compiled=True)
    for p, f in zip(part, fast):
        assert torch.equal(p.outputs["mid"], f.outputs["mid"][:8])
    d = phimod.noise_averaged(tiny, x[:8], [0.2], 4, ["mid"], 0, 64, compiled=True, output=True)[0]
    de = phimod.noise_averaged(tiny, x[:8], [0.2], 4, ["mid"], 0, 64, compiled=False, output=True)[0]
    torch.testing.assert_close(d.denoised, de.denoised, rtol=1e-5, atol=1e-6)


def test_a_failed_compile_warns_and_runs_eager(tiny, monkeypatch, fresh_state):
    def broken(fn, **kw):
        def run(*a, **k):
            raise RuntimeError("no C compiler")
        return run
    monkeypatch.setattr(torch, "compile", broken)
    x = images(5)
    with pytest.warns(RuntimeWarning, match="compiled extraction failed.*no C compiler"):
        got = phimod.noise_averaged(tiny, x, [0.2], 2, ["mid"], 0, 64, compiled=True)[0].outputs["mid"]
    want = phimod.noise_averaged(tiny, x, [0.2], 2, ["mid"], 0, 64, compiled=False)[0].outputs["mid"]
    assert torch.equal(got, want) and compiled._state["failed"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; later calls run eager quietly
        phimod.noise_averaged(tiny, x, [0.2], 2, ["mid"], 0, 64, compiled=True)


def test_the_cache_keeps_compiled_and_eager_entries_apart(tiny, tmp_path, monkeypatch, fresh_state):
    monkeypatch.setenv("LIB_CACHE", str(tmp_path / "memo"))
    x = images(phimod.MEMO_FROM)
    monkeypatch.setenv("LIB_COMPILE", "off")
    eager = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    monkeypatch.setenv("LIB_COMPILE", "on")
    fast = phimod.phi(tiny, x, 0.2, 2, "mid", seed=0)
    assert len(list((tmp_path / "memo" / "phi").glob("*.npz"))) == 2
    torch.testing.assert_close(fast, eager, rtol=1e-5, atol=1e-6)
    assert torch.equal(phimod.phi(tiny, x, 0.2, 2, "mid", seed=0), fast)


def test_compiled_denoise_is_eager_denoise_to_rounding(tiny, fresh_state):
    from lib.measure.denoising import denoise
    y = images(5)
    torch.testing.assert_close(denoise(tiny, y, batch_size=4, compiled=True), denoise(tiny, y, batch_size=4),
                               rtol=1e-4, atol=1e-5)


def test_compiled_samplers_follow_eager_to_rounding(tiny, monkeypatch, fresh_state):
    from lib.sampling import samplers as S
    x0 = S.flat_start(tiny, 3)
    sched = S.AscentSchedule(max_steps=4)
    monkeypatch.setenv("LIB_COMPILE", "off")
    assert not S.sampler_compiled(tiny, x0, sched)
    eager = S.sample_unconditional(tiny, x0, sched, generator=torch.Generator().manual_seed(0), progress=False)
    monkeypatch.setenv("LIB_COMPILE", "on")
    assert S.sampler_compiled(tiny, x0, sched) and not S.sampler_compiled(tiny, x0, "not a schedule")
    fast = S.sample_unconditional(tiny, x0, sched, generator=torch.Generator().manual_seed(0), progress=False)
    assert not compiled._state["failed"]
    torch.testing.assert_close(fast.samples, eager.samples, rtol=1e-4, atol=1e-4)  # four steps: rounding only


def test_compiled_extraction_in_bf16_stays_far_inside_phis_monte_carlo_error(tiny, monkeypatch, fresh_state):
    monkeypatch.setattr(compiled, "COMPILED_BF16", True)
    assert phimod.extraction_amp(False, True) == "auto" and phimod.extraction_amp(False, False) is False
    assert phimod.extraction_amp(True, True) is True                 # an explicit choice wins
    x = images(32)
    fp32 = phimod.noise_averaged(tiny, x, [0.2], 4, ["mid"], 0, 64, compiled=False)[0].outputs["mid"]
    fast = phimod.noise_averaged(tiny, x, [0.2], 4, ["mid"], 0, 64, compiled=True)[0].outputs["mid"]
    other = phimod.noise_averaged(tiny, x, [0.2], 4, ["mid"], 1, 64, compiled=False)[0].outputs["mid"]

    def rel(a, b):
        return float(((a - b).norm(dim=1) / b.norm(dim=1)).median())
    assert rel(fast, fp32) < 0.25 * rel(other, fp32)   # bf16's error << another draw of the noise
