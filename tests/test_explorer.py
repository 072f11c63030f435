"""The phi explorer (lib/notebook/nb07_explorer.py): widgets changed programmatically update the displayed state."""
import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")

from lib.core.paths import CHECKPOINTS
from lib.data.datasets import load_dataset
from lib.model.checkpoint import load_model
from lib.notebook.nb07_explorer import PANELS, Explorer, render_static

SHORT = {"schedule": [1.0, 0.3, 0.1, 0.03], "projection": {"iters": 2}}  # a 4-step sampler: seconds on the tiny model


@pytest.fixture(scope="module")
def explorer():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 16px model gains nothing from more; 2 threads on a busy 2-core box crawl
    try:
        model = load_model(CHECKPOINTS / "tiny16")
        data = load_dataset("tuxphoto", n=32, size=16, split="test")
        yield Explorer(model, data, top_k=6, n_top=6, k=4, n_samples=2, sampler_kwargs=SHORT)
    finally:
        torch.set_num_threads(threads)


def test_initial_state_and_panels(explorer):
    s = explorer.state
    assert s["index"] == 0 and explorer.index.value == 0
    assert s["phi"].shape == (explorer.n_channels,)
    assert len(s["top_channels"]) == 6 and s["channel"] == s["top_channels"][0]
    assert s["phi"][s["top_channels"][0]] == s["phi"].max()
    assert len(s["nn_phi"]) == len(s["nn_pixel"]) == 4 and 0 not in s["nn_phi"] + s["nn_pixel"]
    assert s["label"] == int(explorer.data.labels[0])
    assert explorer.state["class_name"] in explorer.label.value
    for p in PANELS:  # every panel holds a PNG
        assert explorer.panels[p].value[:8] == b"\x89PNG\r\n\x1a\n", p
    assert [v for _, v in explorer.channel_dd.options] == s["top_channels"]
    assert explorer.index.continuous_update is False and explorer.sigma.continuous_update is False


def test_image_slider_changes_state_and_images(explorer):
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in explorer.state.items()}
    png_before = dict(explorer.png)
    explorer.index.value = 5
    s = explorer.state
    assert s["index"] == 5 and s["label"] == int(explorer.data.labels[5])
    assert not np.allclose(s["phi"], before["phi"])
    assert np.allclose(s["phi"], explorer.phis[5].numpy())
    assert [v for _, v in explorer.channel_dd.options] == s["top_channels"]
    assert s["channel"] == s["top_channels"][0] == explorer.channel_box.value
    assert (s["nn_phi"], s["nn_pixel"]) != (before["nn_phi"], before["nn_pixel"])
    assert 5 not in s["nn_phi"] and 5 not in s["nn_pixel"]
    assert s["nn_pixel"][0] == int(np.argsort(((explorer._pixels - explorer._pixels[5]) ** 2).sum(1))[1])
    for p in ("image", "phi", "channel", "neighbours"):
        assert explorer.png[p] != png_before[p], p


def test_channel_dropdown_and_box(explorer):
    explorer.index.value = 3
    s = explorer.state
    c2 = s["top_channels"][2]
    png = explorer.png["channel"]
    explorer.channel_dd.value = c2
    assert explorer.state["channel"] == c2 == explorer.channel_box.value
    assert explorer.png["channel"] != png
    top_imgs = explorer.state["max_activating"]
    assert top_imgs[0] == int(explorer.phis[:, c2].argmax())
    other = next(c for c in range(explorer.n_channels) if c not in s["top_channels"])
    explorer.channel_box.value = other  # a channel outside the top list: the dropdown clears
    assert explorer.state["channel"] == other and explorer.channel_dd.value is None
    assert explorer.state["max_activating"] != top_imgs
    assert explorer.state["index"] == 3  # choosing a channel does not move the image


def test_sigma_slider_updates_only_the_noisy_panel(explorer):
    explorer.sigma.value = 0.1
    p1, png = explorer.state["psnr_noisy"], dict(explorer.png)
    explorer.sigma.value = 0.6
    assert explorer.state["sigma"] == pytest.approx(0.6)
    assert explorer.state["psnr_noisy"] < p1 - 5
    assert explorer.png["image"] != png["image"] and explorer.png["phi"] == png["phi"]


def test_topk_box_changes_channel_list(explorer):
    explorer.topk_box.value = 3
    assert len(explorer.state["top_channels"]) == 3 and len(explorer.channel_dd.options) == 3
    explorer.topk_box.value = 6
    assert len(explorer.state["top_channels"]) == 6


def test_reconstruct_button_masked(explorer):
    explorer.index.value = 7
    explorer.mask_box.value = True
    explorer.recon_button.click()
    s = explorer.state
    assert s["recon"].shape == (2, *explorer.images.shape[1:]) and s["recon_index"] == 7
    assert s["recon_masked"] and s["channel"] in s["recon_channels"]
    assert set(s["top_channels"]) <= set(s["recon_channels"])
    assert explorer.progress.value == explorer.progress.max == len(SHORT["schedule"])
    assert not explorer.recon_button.disabled
    explorer.index.value = 8  # a new image clears the reconstructions
    assert explorer.state["recon"] is None


def test_render_static_saves_panels_and_keeps_widgets(explorer, tmp_path):
    from lib.notebook.plots import set_figure_dir
    set_figure_dir(tmp_path)
    explorer.index.value = 2
    paths = render_static(explorer, index=4, channel=1, reconstruct=False, show=False)
    assert set(paths) == {"image", "phi", "channel", "neighbours"}
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths.values())
    assert explorer.state["index"] == 2 == explorer.index.value


def test_bad_inputs(explorer):
    with pytest.raises(ValueError, match="index"):
        explorer.describe(len(explorer.images))
    with pytest.raises(ValueError, match="channel"):
        explorer.describe(0, channel=explorer.n_channels)
    with pytest.raises(ValueError, match="phis"):
        Explorer(explorer.model, explorer.data, phis=np.zeros((3, 4)))
