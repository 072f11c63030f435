import pytest
import torch

from lib.model.hooks import run_blocks
from lib.model.unet import UNet, UNetConfig, count_parameters, forward_flops, preset


def test_paper_preset_parameter_count_and_mid_size():
    m = UNet(preset("paper64"))
    assert count_parameters(m) == 13_678_147
    rec = run_blocks(m, torch.rand(1, 3, 64, 64), "mid")
    assert rec.outputs["mid"].shape == (1, 512, 8, 8)


def test_paper_preset_structure():
    m = UNet(preset("paper64"))

    def convs(b):
        return sum(isinstance(x, torch.nn.Conv2d) for x in getattr(m, b).modules())

    assert [convs(b) for b in ("enc1", "enc2", "enc3", "mid", "dec3", "dec2", "dec1")] == [2, 2, 2, 3, 7, 6, 5]
    assert m.up3.bias is None and m.enc1[0][0].bias is not None
    # first conv of E1 has no norm; the output conv has neither norm nor ReLU
    assert len(m.enc1[0]) == 2 and len(m.dec1[-1]) == 1


@pytest.mark.parametrize("norm", ["scale", "bfbn", "batch", "none"])
def test_norms_forward_shape(norm):
    m = UNet(preset("tiny", norm=norm))
    y = torch.rand(2, 3, 16, 16)
    assert m(y).shape == y.shape


def test_scale_norm_is_scale_equivariant():
    """Bias-free in the norm: scaling the pre-norm input by a > 0 leaves the normalized output unchanged."""
    from lib.model.unet import ScaleNorm
    n = ScaleNorm(4)
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(n(3 * x), n(x), atol=1e-5)


def test_small_presets_and_flops():
    assert count_parameters(UNet(preset("cpu32"))) < 5_000_000
    c = preset("paper64")
    assert forward_flops(c, 64) > 2.5 * forward_flops(c, 64, stop_after_mid=True)


@pytest.mark.parametrize("bad,msg", [
    (torch.rand(3, 16, 16), "shape"),
    (torch.rand(1, 1, 16, 16), "channels"),
    (torch.rand(1, 3, 12, 16), "divisible by 8"),
    (torch.full((1, 3, 16, 16), float("nan")), "NaN"),
])
def test_bad_inputs(tiny, bad, msg):
    with pytest.raises(ValueError, match=msg):
        tiny(bad)


def test_config_errors():
    with pytest.raises(ValueError, match="norm"):
        UNetConfig(norm="layer")
    with pytest.raises(ValueError, match="one entry per level"):
        UNetConfig(widths=(8, 16))
    with pytest.raises(ValueError, match="unknown preset"):
        preset("nope")
    with pytest.raises(ValueError, match="unknown keys"):
        UNetConfig.from_dict({"widths": [8], "colour": 1})
