"""Notebooks read phi from a lib.representation.extract cache when given one (issue: paper scale, phi for a million
images)."""
import json

import nbformat
import pytest
import torch

from lib.notebook import setup as nbsetup
from lib.publish import runner
from lib.representation.cache import trained_phi
from lib.representation.phi import phi
from scripts import extract as extract_cli

N = nbsetup.SMOKE_IMAGES  # the notebooks smoke-run on this many images


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    out = tmp_path_factory.mktemp("phi_cache")
    extract_cli.main(["--checkpoint", str(nbsetup.SMOKE_CHECKPOINT), "--dataset", "tuxphoto", "--split", "test",
                  "--n", str(N), "--sigmas", "0", "0.2", "--n-noise", "3",
                  "--blocks", "a1", "a2", "a3", "a4", "a5", "a6",
                  "--seed", "0", "--out", str(out / "c"), "--cache-dir", str(out / "pool"), "--no-progress",
                  "--amp", "false", "--chunk-size", "10"])
    return out / "c"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return nbsetup.setup("test_phi_cache", "unused", "tuxphoto", "cpu", smoke=True, seed=0, n_images=N - 4,
                         figures=tmp_path_factory.mktemp("figures"))


def test_cache_rows_equal_computed_phi(cache, ctx):
    got = trained_phi(ctx, 0.2, 3, ["a4", "a2"], cache=cache)
    ref = phi(ctx.model, ctx.images, 0.2, 3, ["a4", "a2"], seed=0)
    assert set(got) == set(ref) == {"mid", "enc2"}
    for b in ref:
        assert got[b].shape == ref[b].shape == (N - 4, ref[b].shape[1])
        torch.testing.assert_close(got[b], ref[b], rtol=1e-4, atol=1e-5)
    single = trained_phi(ctx, 0.0, 1, "mid", cache=cache)
    torch.testing.assert_close(single, phi(ctx.model, ctx.images, 0.0, 1, "mid"), rtol=1e-4, atol=1e-5)


def test_missing_cache_folder_computes(tmp_path, ctx, capsys):
    got = trained_phi(ctx, 0.0, 1, "mid", cache=tmp_path / "nothing")
    assert "not found" in capsys.readouterr().out
    torch.testing.assert_close(got, phi(ctx.model, ctx.images, 0.0, 1, "mid"))


@pytest.mark.parametrize("change, match", [
    (dict(seed=1), "seed 0 in the cache, 1 here"),
    (dict(sigma=0.3), "sigma 0.3 not extracted"),
    (dict(n_noise=5), "3 noise draws, the notebook asks for 5"),
    (dict(blocks="dec1"), "block .dec1. not extracted"),
])
def test_mismatched_cache_names_the_field(cache, ctx, change, match):
    kw = dict(sigma=0.2, n_noise=3, blocks="mid", seed=0) | change
    with pytest.raises(ValueError, match=match):
        trained_phi(ctx, kw["sigma"], kw["n_noise"], kw["blocks"], cache=cache, seed=kw["seed"])


def test_other_checkpoint_or_too_few_rows_is_refused(cache, ctx, monkeypatch):
    monkeypatch.setattr(ctx, "checkpoint", "data/checkpoints/tux32")
    with pytest.raises(ValueError, match="another checkpoint"):
        trained_phi(ctx, 0.0, 1, "mid", cache=cache)
    monkeypatch.undo()
    monkeypatch.setattr(ctx, "images", torch.zeros(N + 1, 3, 16, 16))
    with pytest.raises(ValueError, match=f"holds {N} images"):
        trained_phi(ctx, 0.0, 1, "mid", cache=cache)


def test_cache_of_other_images_is_refused(cache, ctx, tmp_path):
    import shutil
    other = tmp_path / "other"
    shutil.copytree(cache, other)
    m = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**m, "dataset": "shapes"}))
    with pytest.raises(ValueError, match="dataset 'shapes' in the cache, 'tuxphoto' here"):
        trained_phi(ctx, 0.0, 1, "mid", cache=other)


@pytest.mark.notebook
def test_clustering_notebook_reads_the_cache(cache, tmp_path):
    runner.run(only=["05_clustering"], smoke=True, params={"PHI_CACHE": str(cache), "PHI_SIGMA": 0.2, "PHI_NOISE": 3},
               rendered=tmp_path / "r",
               figures=tmp_path / "fig", html_export=False)
    nb = nbformat.read(tmp_path / "r" / "05_clustering.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"read from the cache {cache}" in text
