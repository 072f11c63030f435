"""lib.sampling.samplers on the tiny random network (16x16): shapes, nfe, determinism, guidance, targets, errors."""
import math

import pytest
import torch

from lib.data.datasets import load_dataset
from lib.model.unet import UNet, preset
from lib.representation.phi import phi
from lib.sampling import samplers as S

SCHED = [1.0, 0.3, 0.05]
NEWTON = S.Projection(method="newton", iters=2, lr=1.0, max_move=1.0)
FAST = dict(projection=NEWTON)


def start(model, targets, n_samples=1):
    """The flat mid-grey starting images for ``n_samples`` per target (T from images, a phi tensor or a target)."""
    T = targets.n if isinstance(targets, S.PhiTarget) else targets.shape[0] if targets.ndim > 1 else 1
    shape = tuple(targets.shape[1:]) if isinstance(targets, torch.Tensor) and targets.ndim == 4 else None
    return S.flat_start(model, T * n_samples, shape=shape)


def backward(model, targets, n_samples=1, schedule=SCHED, **kw):
    return S.guided_backward(model, start(model, targets, n_samples), schedule, targets, **kw)


def ascent(model, targets, n_samples=1, schedule=None, **kw):
    return S.guided_ascent(model, start(model, targets, n_samples), schedule, targets, **kw)


def unconditional(model, n, schedule, **kw):
    return S.sample_unconditional(model, S.flat_start(model, n), schedule, **kw)


@pytest.fixture(scope="module")
def model():
    """The tiny UNet trained for 80 steps on 16x16 tuxphoto (about 2-5 s): enough for guidance to matter."""
    x = load_dataset("tuxphoto", 256, size=16, split="train").float()
    torch.manual_seed(0)
    m = UNet(preset("tiny"))
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(80):
        b = x[torch.randint(0, 256, (16,), generator=g)]
        s = torch.rand(16, 1, 1, 1, generator=g)
        loss = (m(b + s * torch.randn(b.shape, generator=g)) - b).pow(2).sum((1, 2, 3)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def targets():
    return load_dataset("tuxphoto", 2, size=16, split="test").float()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_backward_shapes_and_nfe(model, targets):
    r = backward(model, targets, 3, generator=gen(), progress=False, **FAST)
    assert r.samples.shape == (6, 3, 16, 16) and r.samples.device.type == "cpu"
    assert 0 <= r.samples.min() and r.samples.max() <= 1 and torch.isfinite(r.samples).all()
    # per step: projection = 3 forwards-to-mid + 2 backwards, then 1 full forward -> 6; 3 steps
    assert r.nfe == 18 and r.steps == 3
    assert r.sigmas.shape == (3, 6) and r.final_sigma.shape == (6,) and r.phi_rel_err.shape == (6,)
    assert r.wall_s > 0 and r.info["target_nfe"] > 0


def test_unconditional_nfe_and_stopping(model):
    r = unconditional(model, 2, S.AscentSchedule(sigma_L=1e-6, h0=0.5, beta=0.5, max_steps=7), generator=gen(),
                      progress=False)
    assert r.steps == 7 and r.nfe == 8  # one forward per step + the final D(y) of unfinished images
    assert r.sigmas.shape == (7, 2) and r.phi_rel_err is None
    calls = []
    r = unconditional(model, 3, S.AscentSchedule(sigma_L=0.3, h0=0.5, beta=0.5, max_steps=200), generator=gen(),
                      progress=False, callback=calls.append)
    assert r.nfe == r.steps == len(calls) < 200 and isinstance(calls[0], S.Step)
    assert [c.step for c in calls] == list(range(r.steps)) and [c.nfe for c in calls] == list(range(1, r.steps + 1))
    last = r.sigmas[-1]
    assert (last < 0.3).all() and (r.sigmas[-2] >= 0.3).any()
    for i in range(3):  # an image stops updating once below sigma_L: its recorded sigma stays put
        k = int((r.sigmas[:, i] < 0.3).nonzero()[0])
        assert (r.sigmas[k:, i] == r.sigmas[k, i]).all()
    assert calls[-1].y.shape[0] == calls[-1].active.shape[0] <= 3


def test_forward_form_nfe(model, targets):
    r = ascent(model, targets[:1], 2, S.AscentSchedule(sigma_L=1e-6, h0=0.5, beta=0.5, max_steps=4),
               projection=S.Projection(method="newton", iters=1, lr=1.0), generator=gen(), progress=False)
    assert r.steps == 4 and r.nfe == 4 * (3 + 1) + 1  # projection 2 fwd + 1 bwd, score 1 fwd; final D(y)


def test_determinism_and_batch_independence(model, targets):
    a = backward(model, targets, 2, generator=gen(3), progress=False, **FAST).samples
    b = backward(model, targets, 2, generator=gen(3), progress=False, **FAST).samples
    c = backward(model, targets, 2, generator=gen(4), progress=False, **FAST).samples
    assert torch.equal(a, b) and not torch.allclose(a, c)
    sch = S.AscentSchedule(h0=0.5, beta=0.5, max_steps=5)
    u2 = unconditional(model, 2, sch, generator=gen(), progress=False)
    u3 = unconditional(model, 3, sch, generator=gen(), progress=False)
    torch.testing.assert_close(u2.samples, u3.samples[:2], atol=1e-5, rtol=0)


def test_guidance_reduces_phi_error(model, targets):
    guided = backward(model, targets, 2, generator=gen(), progress=False, **FAST)
    free = backward(model, targets, 2, generator=gen(), progress=False, projection=S.Projection(iters=0))
    assert guided.phi_rel_err.mean() < 0.7 * free.phi_rel_err.mean()
    ref = S.self_guided(model, targets[:1], 1, preset="reference", generator=gen(), progress=False,
                        schedule=[1.0, 0.3, 0.05], projection=dict(iters=20))
    assert ref.phi_rel_err.mean() < free.phi_rel_err[:2].mean()


def test_sigma_scaled_lr(model, targets):
    """projection.lr x sigma_k ** lr_sigma_power is the same as the explicit per-step list, in both forms."""
    sched = [1.0, 0.25, 0.0625]  # exact in float32
    kw = dict(schedule=sched, progress=False)
    a = backward(model, targets, 2, projection=S.Projection(iters=3, lr=0.05, lr_sigma_power=0.5), generator=gen(),
                 **kw)
    b = backward(model, targets, 2, projection=S.Projection(iters=3, lr=tuple(0.05 * s ** 0.5 for s in sched)),
                 generator=gen(), **kw)
    c = backward(model, targets, 2, projection=S.Projection(iters=3, lr=0.05), generator=gen(), **kw)
    assert torch.equal(a.samples, b.samples) and a.nfe == b.nfe == c.nfe
    assert not torch.allclose(a.samples, c.samples)
    sch = S.AscentSchedule(sigma_L=1e-6, h0=0.5, beta=0.5, max_steps=3)
    f1 = ascent(model, targets[:1], 2, sch, projection=S.Projection(iters=2, lr=0.05, lr_sigma_power=0.5),
                generator=gen(), progress=False)
    f0 = ascent(model, targets[:1], 2, sch, projection=S.Projection(iters=2, lr=0.05), generator=gen(), progress=False)
    assert f1.nfe == f0.nfe and torch.isfinite(f1.samples).all() and not torch.allclose(f1.samples, f0.samples)
    for bad in (0.0, -1.0, [0.01, 0.01], [0.01, float("nan"), 0.01]):
        with pytest.raises(ValueError, match="projection.lr"):
            backward(model, targets, 1, projection=S.Projection(iters=3, lr=bad), **kw)


def test_polish(model, targets):
    """The noise-averaged polish costs 2 x draws calls per iteration, is seeded, and lowers the phi error."""
    kw = dict(FAST, progress=False)
    pk = dict(polish=S.Polish(iters=5, draws=3, lr=0.01))
    plain = backward(model, targets, 2, generator=gen(), **kw)
    pol = backward(model, targets, 2, generator=gen(), **pk, **kw)
    again = backward(model, targets, 2, generator=gen(), **pk, **kw)
    assert pol.nfe == plain.nfe + 5 * 2 * 3 and torch.equal(pol.samples, again.samples)
    assert pol.phi_rel_err.mean() < plain.phi_rel_err.mean()
    one = backward(model, targets[:1], 2, generator=gen(), **pk, **kw)
    torch.testing.assert_close(one.samples, pol.samples[:2], atol=1e-4, rtol=0)  # batch-independent draws
    with pytest.raises(ValueError, match="polish"):
        S.Polish(iters=2, draws=0)


def test_fast_preset_guides(model, targets):
    """The shipped fast preset (shortened schedule) matches phi better than the same chain without guidance."""
    sched = torch.logspace(0, math.log10(0.03), 8).tolist()
    fast = S.self_guided(model, targets, 2, preset="fast", generator=gen(), progress=False, schedule=sched)
    free = S.self_guided(model, targets, 2, preset="fast", generator=gen(), progress=False, schedule=sched,
                         projection=dict(iters=0), polish=0)  # no guidance at all
    assert fast.phi_rel_err.mean() < 0.7 * free.phi_rel_err.mean()


def test_project_adam_stops_at_tolerance(model, targets):
    y = targets + 0.2 * torch.randn(targets.shape, generator=gen())
    t = phi(model, targets, 0.2, n_noise=4)
    _, nfe, used, l0, l1 = S.project(model, y, t, torch.ones_like(t), method="adam", iters=50, lr=0.01, tol=0.5)
    assert (l1 <= 0.5 * l0).all() and used.max() < 50 and nfe == 2 * used.max().item() + 1


def test_mask_topk_centroid(model, targets):
    C = S.channel_count(model)
    t = phi(model, targets, 0.0, n_noise=1)
    mask = S.topk_mask(t, 5)
    assert mask.shape == (2, C) and (mask.sum(1) == 5).all()
    assert torch.equal(mask[0].nonzero().flatten().sort().values, t[0].topk(5).indices.sort().values)
    # target differs from phi(y) only outside the mask -> masked loss is 0 and y does not move
    y = targets.clone()
    off = t + 10.0 * (1 - mask)
    y2, _, _, l0, _ = S.project(model, y, off, mask, method="newton", iters=2)
    assert torch.allclose(l0, torch.zeros(2), atol=1e-10) and torch.equal(y2, y)
    r = backward(model, off, 1, guide=S.Guide(mask=mask), generator=gen(), progress=False, **FAST)
    assert r.samples.shape == (2, 3, 16, 16) and torch.isfinite(r.phi_rel_err).all()
    cen = S.centroid_target(model, targets, n_noise=2)
    torch.testing.assert_close(cen(0.1), phi(model, targets, 0.1, n_noise=2).mean(0, keepdim=True))
    r = backward(model, cen, 3, generator=gen(), progress=False, **FAST)
    assert r.samples.shape == (3, 3, 16, 16)
    # a callable target and the on-demand grid interpolate between grid sigmas
    it = S.make_target(model, targets, n_noise=2)
    s1, s2 = 10 ** (-8 / 8), 10 ** (-7 / 8)
    mid = math.sqrt(s1 * s2)
    torch.testing.assert_close(it(mid), 0.5 * (it(s1) + it(s2)))
    ct = S.make_target(model, lambda s: t * (1 + s))
    torch.testing.assert_close(ct(0.5), 1.5 * t)


def test_bad_inputs(model, targets):
    C = S.channel_count(model)
    kw = dict(progress=False, **FAST)
    x = S.flat_start(model, 2)
    with pytest.raises(ValueError, match="target"):
        S.guided_backward(model, x, SCHED, targets[:, :1], **kw)
    with pytest.raises(ValueError, match="target"):
        S.guided_backward(model, x, SCHED, targets[:, :, :12, :12], **kw)
    with pytest.raises(ValueError, match="target"):
        S.guided_backward(model, x, SCHED, torch.rand(2, C + 1), **kw)
    with pytest.raises(ValueError, match="mask"):
        S.guided_backward(model, x, SCHED, targets, guide=S.Guide(mask=torch.ones(C - 1)), **kw)
    with pytest.raises(ValueError, match="x: expected n_samples starting images per target"):
        S.guided_backward(model, S.flat_start(model, 3), SCHED, targets, **kw)
    with pytest.raises(ValueError, match="x: expected 3 channels"):
        S.guided_backward(model, x[:, :1], SCHED, targets, **kw)
    with pytest.raises(ValueError, match="schedule: expected an AscentSchedule"):
        S.guided_ascent(model, x, SCHED, targets, progress=False)
    for k in (0, C + 1):
        with pytest.raises(ValueError, match="k"):
            S.topk_mask(torch.rand(C), k)
    with pytest.raises(ValueError, match="sigma0"):
        S.AscentSchedule(sigma0=0.05, sigma_L=0.05)
    with pytest.raises(ValueError, match="sigma0"):
        S.AscentSchedule(sigma0=0.01, sigma_L=0.05)
    with pytest.raises(ValueError, match="block"):
        S.guided_backward(model, x, SCHED, targets, guide=S.Guide(block="enc9"), **kw)
    with pytest.raises(ValueError, match="n_samples"):
        S.self_guided(model, targets, n_samples=0, progress=False)
    with pytest.raises(ValueError, match="preset"):
        S.self_guided(model, targets, preset="slow", progress=False)


def test_divergence_raises(targets):
    torch.manual_seed(0)
    bad = UNet(preset("tiny")).eval()
    with torch.no_grad():
        bad.dec1[-1][0].weight.fill_(float("nan"))  # D(y) is NaN, the middle block is fine
    with pytest.raises(FloatingPointError, match="step 0"):
        backward(bad, targets, progress=False, **FAST)
    with pytest.raises(FloatingPointError, match="sigma"):
        unconditional(bad, 2, S.AscentSchedule(max_steps=3), progress=False)


def _block_mean(model, y):
    from lib.model.hooks import BlockRecorder
    with torch.no_grad(), BlockRecorder(model, "mid") as rec:
        model(y)
    return rec.outputs["mid"].float().mean((2, 3))


def test_apply_mask_modes(model, targets):
    t = phi(model, targets, 0.0, n_noise=1)
    mask = S.topk_mask(t, 4)
    tz, w = S.apply_mask(S.make_target(model, t), mask, "zero")
    assert torch.equal(w, torch.ones_like(w)) and torch.equal(tz(0.3), t * mask)
    tf, wf = S.apply_mask(S.make_target(model, t), mask, "free")
    assert torch.equal(wf, mask) and torch.equal(tf(0.3), t)
    assert S.apply_mask(S.make_target(model, t), None, "zero")[0](0.3) is not None
    with pytest.raises(ValueError, match="masked"):
        backward(model, t, 1, guide=S.Guide(mask=mask, masked="none"), progress=False, **FAST)


@pytest.fixture(scope="module")
def tux32():
    """The shipped 32x32 checkpoint: its middle block, unlike the tiny test network's, responds to the image."""
    from lib.core.paths import ROOT
    from lib.model.checkpoint import load_model
    m = load_model(str(ROOT / "data/checkpoints/tux32"))
    x = load_dataset("tuxphoto", 200, size=32, split="test").float()
    P = phi(m, x, 0.1, n_noise=2, seed=0)
    zero_frac = (P < 1e-3).float().mean(0)
    sparse = (zero_frac >= 0.5) & (zero_frac < 1)   # channels that are off on at least half the real images
    idx = (P[:, sparse] > 1e-3).sum(1).topk(2).indices  # targets on which many of them are on
    return m, x[idx], P[idx], sparse


def test_zero_mask_drives_dropped_channels_to_zero(tux32):
    """The authors' subspace projection on the shipped model: dropping the sparse channels (off on half the
    real images, so zero is reachable) with mode "zero" drives their block means to <= 25% of their value
    (measured about 20%) where mode "free" leaves them (>= 90%); the sample's phi on them is near zero."""
    m, targets, t, sparse = tux32
    mask = (~sparse).float()
    y = targets + 0.1 * torch.randn(targets.shape, generator=gen())
    before = _block_mean(m, y)[:, sparse].sum(1)
    after = {}
    for mode in ("zero", "free"):
        tt, w = S.apply_mask(S.make_target(m, t), mask, mode)
        yp, _, _, _, _ = S.project(m, y, tt(0.1), w, method="adam", iters=20, lr=0.01, tol=1e-3)
        after[mode] = _block_mean(m, yp)[:, sparse].sum(1)
    assert (after["zero"] <= 0.25 * before).all(), (before, after)
    assert (after["free"] >= 0.9 * before).all(), (before, after)
    # through the sampler: the sample's phi on the dropped channels is near zero (the target has them on)
    kw = dict(progress=False, generator=gen(), schedule=[1.0, 0.3, 0.1], projection=S.Projection(iters=10, lr=0.01))
    r = backward(m, targets, 1, guide=S.Guide(mask=mask, masked="zero"), **kw)
    dropped = phi(m, r.samples, 0.1, n_noise=2, seed=1)[:, sparse].sum(1)
    assert (dropped <= 0.05 * t[:, sparse].sum(1)).all(), (dropped, t[:, sparse].sum(1))


def test_outside_01_is_the_share_clamped():
    """info["outside_01"]: the share of pixel values the final clamp moved (here a denoiser returning 1.5 or
    the input's mean-free part: all, or some, of them)."""
    class Const(torch.nn.Module):
        def __init__(self, inner, value):
            super().__init__()
            self.inner, self.config, self.value = inner, inner.config, value

        def forward(self, y):
            return self.inner(y) * 0 + self.value

    torch.manual_seed(0)
    tiny = UNet(preset("tiny")).eval()
    r = unconditional(Const(tiny, 1.5), 2, S.AscentSchedule(max_steps=2), generator=gen(), progress=False)
    assert r.info["outside_01"] == 1.0 and float(r.samples.max()) == 1.0
    r = unconditional(Const(tiny, 0.5), 2, S.AscentSchedule(max_steps=2), generator=gen(), progress=False)
    assert r.info["outside_01"] == 0.0
