import copy
import json

import pytest
import torch

from lib.data.datasets import load_dataset
from lib.measure.denoising import block_reliance
from lib.model.checkpoint import load_model, save_model
from lib.model.hooks import BlockRecorder, ReplaceOutput, count_hooks, resolve_blocks, run_blocks
from lib.representation.phi import phi
from scripts import reliance as reliance_cli


def test_records_all_six_blocks(tiny):
    x = torch.rand(2, 3, 16, 16)
    rec = run_blocks(tiny, x, ["a1", "a2", "a3", "a4", "a5", "a6"], stop=False)
    assert list(rec.outputs) == ["enc1", "enc2", "enc3", "mid", "dec3", "dec2"]
    assert rec.outputs["mid"].shape == (2, 32, 2, 2)
    assert count_hooks(tiny) == 0


def test_stop_after_block_and_no_hooks_left(tiny):
    seen = []
    h = tiny.dec3.register_forward_hook(lambda *a: seen.append(1))
    with BlockRecorder(tiny, "mid", stop=True) as rec:
        tiny(torch.rand(1, 3, 16, 16))
    h.remove()
    assert "mid" in rec.outputs and not seen  # decoder never ran
    assert count_hooks(tiny) == 0


def test_hooks_removed_after_exception(tiny):
    with pytest.raises(ValueError):
        with BlockRecorder(tiny, ["a1", "a4"]):
            tiny(torch.rand(1, 3, 15, 16))  # bad size raises inside
    assert count_hooks(tiny) == 0
    with pytest.raises(RuntimeError):
        with BlockRecorder(tiny, ["a1"]):
            raise RuntimeError("boom")
    assert count_hooks(tiny) == 0


def test_grad_kept_or_dropped(tiny):
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    rec = run_blocks(tiny, x, "mid", grad=True)
    rec.outputs["mid"].mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    rec = run_blocks(tiny, x, "mid", grad=False)
    assert not rec.outputs["mid"].requires_grad


def test_unknown_block(tiny):
    with pytest.raises(ValueError, match="unknown block 'a9'"):
        resolve_blocks(tiny, "a9")


def test_phi_equals_hand_loop(tiny):
    from lib.core.device import per_sample_noise
    x = torch.rand(3, 3, 16, 16)
    got = phi(tiny, x, sigma=0.2, n_noise=5, seed=7, batch_size=4)
    z = per_sample_noise(3, (3, 16, 16), 7, draws=5)
    want = []
    with torch.no_grad():
        for i in range(3):
            acc = 0
            for j in range(5):
                rec = run_blocks(tiny, (x[i] + 0.2 * z[i, j])[None], "mid")
                acc = acc + rec.outputs["mid"].mean(dim=(2, 3))[0]
            want.append(acc / 5)
    assert torch.allclose(got, torch.stack(want), atol=1e-5)


def test_phi_deterministic_and_batch_independent(tiny):
    x = torch.rand(5, 3, 16, 16)
    a = phi(tiny, x, 0.3, n_noise=4, seed=1, batch_size=3)
    b = phi(tiny, x, 0.3, n_noise=4, seed=1, batch_size=64)
    c = phi(tiny, x, 0.3, n_noise=4, seed=2)
    assert torch.allclose(a, b, atol=1e-6) and not torch.allclose(a, c)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(phi(tiny, x, 0.3, 2, generator=g1), phi(tiny, x, 0.3, 2, generator=g2))


def test_phi_sigma0_one_draw(tiny):
    x = torch.rand(2, 3, 16, 16)
    a = phi(tiny, x, 0.0, n_noise=20)
    rec = run_blocks(tiny, x, "mid")
    assert torch.allclose(a, rec.outputs["mid"].mean(dim=(2, 3)), atol=1e-6)


def test_phi_several_blocks_and_inputs(tiny):
    x = torch.rand(2, 3, 16, 16)
    out, ins = phi(tiny, x, 0.0, blocks=["a1", "a5"], inputs=True)
    assert out["enc1"].shape == (2, 8) and ins["dec3"].shape == (2, 32)


@pytest.mark.parametrize("kw,msg", [
    (dict(sigma=-0.1), "sigma"), (dict(sigma=float("nan")), "sigma"), (dict(n_noise=0), "n_noise"),
    (dict(blocks="nope"), "unknown block"),
])
def test_phi_bad_args(tiny, kw, msg):
    with pytest.raises(ValueError, match=msg):
        phi(tiny, torch.rand(1, 3, 16, 16), **kw)


@pytest.mark.parametrize("x,msg", [
    (torch.rand(1, 3, 16, 16) * 2, r"\[0, 1\]"), (torch.rand(1, 4, 16, 16), "channels"),
    (torch.rand(1, 3, 20, 16), "divisible"),
])
def test_phi_bad_images(tiny, x, msg):
    with pytest.raises(ValueError, match=msg):
        phi(tiny, x)


def test_replace_output_changes_the_forward_pass_and_removes_its_hook(tiny):
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        ref = tiny(x)
        with ReplaceOutput(tiny, "a4", lambda a: a):
            same = tiny(x)
        with ReplaceOutput(tiny, "mid", torch.zeros_like):
            zeroed = tiny(x)
    assert torch.equal(same, ref) and not torch.allclose(zeroed, ref)
    assert count_hooks(tiny) == 0


def test_block_reliance_is_zero_when_the_decoder_cannot_see_the_block(tiny):
    cut = copy.deepcopy(tiny)
    with torch.no_grad():
        cut.up3.weight.zero_()  # the only path from the middle block to the output
    x = torch.rand(6, 3, 16, 16)
    t = block_reliance(cut, x, sigmas=(0.3,))
    assert t["0.3"]["swap_drop"] == 0 and t["0.3"]["means_drop"] == 0
    assert block_reliance(tiny, x, sigmas=(0.3,))["0.3"]["swap_drop"] != 0
    with pytest.raises(ValueError, match="at least 2"):
        block_reliance(tiny, x[:1])


def test_shipped_tux32_decoder_uses_its_middle_block():
    """Measured 0.71 dB over 256 held-out images (the CIFAR-10 checkpoint: 0.000)."""
    x = load_dataset("tuxphoto", n=32, size=32, seed=0, split="test").float()
    t = block_reliance(load_model("data/checkpoints/tux32").eval(), x, sigmas=(0.8,))
    assert t["0.8"]["swap_drop"] > 0.2 and t["0.8"]["means_drop"] > 0.05


def test_reliance_cli_tables_every_block_and_merges(tmp_path):
    reliance_cli.main(["data/checkpoints/tiny16", "--dataset", "tuxphoto", "--n", "8", "--sigmas", "0.5",
                       "--out", str(tmp_path), "--threads", "1"])
    t = json.loads((tmp_path / "reliance.json").read_text())
    (name,) = t
    assert name.startswith("tiny16 (") and list(t[name]) == ["enc1", "enc2", "enc3", "mid", "dec3", "dec2"]
    # swapping enc3's output hands dec3 everything of the other image: the same loss as swapping dec3's
    assert t[name]["enc3"]["0.5"]["swap_drop"] == t[name]["dec3"]["0.5"]["swap_drop"]
    reliance_cli.main(["data/checkpoints/tux32", "--dataset", "tuxphoto", "--n", "4", "--sigmas", "0.5",
                       "--out", str(tmp_path), "--threads", "1"])
    md = (tmp_path / "reliance.md").read_text()
    assert "| tiny16 (" in md and "| tux32 (440,000 images) | 0.5 |" in md


def test_reliance_keys_runs_by_what_they_are(tmp_path):
    """X/tiny/model and Y/tiny/model are two rows (the second overwrote the first when keyed by folder name);
    other weights under a recorded key are refused, not written over it."""
    import shutil
    for d in ("x", "y"):
        (tmp_path / d / "tiny").mkdir(parents=True)
        for ext in (".safetensors", ".json"):
            shutil.copyfile(f"data/checkpoints/tiny16{ext}", tmp_path / d / "tiny" / f"model{ext}")
    out = tmp_path / "out"
    common = ["--dataset", "tuxphoto", "--n", "4", "--sigmas", "0.5", "--out", str(out), "--threads", "1"]
    reliance_cli.main([str(tmp_path / "x" / "tiny" / "model"), str(tmp_path / "y" / "tiny" / "model"), *common])
    t = json.loads((out / "reliance.json").read_text())
    assert sorted(k.split(" (")[0] for k in t) == ["x/tiny", "y/tiny"]
    before = (out / "reliance.json").read_text()
    other = tmp_path / "z" / "x" / "tiny"  # the same label and images seen, other weights
    m = load_model(tmp_path / "x" / "tiny" / "model")
    with torch.no_grad():
        next(m.parameters()).add_(0.01)
    save_model(other / "model", m, m.checkpoint_metadata)
    with pytest.raises(ValueError, match="other weights are already recorded"):
        reliance_cli.main([str(other / "model"), str(tmp_path / "y" / "tiny" / "model"), *common])
    assert (out / "reliance.json").read_text() == before
