"""Tests for lib/data/tuxphoto.py (the embedded "tuxphoto" composite dataset)."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib.data import tuxphoto  # noqa: E402


def test_shapes_and_dtypes():
    d = tuxphoto.generate(10, size=32, seed=0)
    assert d["images"].shape == (10, 3, 32, 32)
    assert d["images"].dtype == np.uint8
    assert d["labels"].shape == (10,) and d["labels"].dtype == np.int64
    names = d["class_names"]
    assert names == tuxphoto.class_names() and len(names) >= 8
    assert all(0 <= label < len(names) for label in d["labels"])
    d64 = tuxphoto.generate(3, size=64, seed=0)
    assert d64["images"].shape == (3, 3, 64, 64)
    odd = tuxphoto.generate(2, size=9, seed=0)
    assert odd["images"].shape == (2, 3, 9, 9)


def test_factors():
    n = 17
    d = tuxphoto.generate(n, size=16, seed=3)
    f = d["factors"]
    for k in ("instance", "background", "scale", "x", "y", "flip", "angle"):
        assert k in f
    for k, v in f.items():
        assert v.shape == (n,), k
    for k in ("instance", "background", "flip"):
        assert f[k].dtype == np.int64
    for k in ("scale", "x", "y", "angle"):
        assert f[k].dtype == np.float32
    assert set(np.unique(f["flip"])) <= {0, 1}
    assert np.all(np.abs(f["angle"]) <= 15.0)
    assert np.all((f["scale"] >= 0.4) & (f["scale"] <= 0.9))
    # instance ids are global and consistent with the labels
    index = json.loads((tuxphoto.DEFAULT_BANK_DIR / "index.json").read_text())
    cls = [index["classes"].index(s["class"]) for s in index["sprites"]]
    assert [cls[i] for i in f["instance"]] == list(d["labels"])
    assert np.all(f["background"] < len(index["backgrounds"]))


def test_deterministic_and_independent_of_n():
    a = tuxphoto.generate(20, size=32, seed=7)
    b = tuxphoto.generate(20, size=32, seed=7)
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["labels"], b["labels"])
    c = tuxphoto.generate(5, size=32, seed=7)
    np.testing.assert_array_equal(a["images"][:5], c["images"])
    np.testing.assert_array_equal(a["labels"][:5], c["labels"])
    for k in a["factors"]:
        np.testing.assert_array_equal(a["factors"][k][:5], c["factors"][k])


def test_seeds_differ():
    a = tuxphoto.generate(8, size=32, seed=0)
    b = tuxphoto.generate(8, size=32, seed=1)
    assert not np.array_equal(a["images"], b["images"])
    # images within a batch differ too
    assert len({im.tobytes() for im in a["images"]}) == 8


def test_all_classes_appear():
    d = tuxphoto.generate(2000, size=8, seed=0)
    counts = np.bincount(d["labels"], minlength=len(d["class_names"]))
    assert np.all(counts > 0), counts


def test_images_not_degenerate():
    im = tuxphoto.generate(32, size=32, seed=0)["images"].astype(np.float32)
    assert im.std(axis=(1, 2, 3)).min() > 5  # no constant images
    assert 40 < im.mean() < 215


def test_zero_images():
    d = tuxphoto.generate(0, size=32)
    assert d["images"].shape == (0, 3, 32, 32)
    assert d["labels"].shape == (0,)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n=-1), "n"),
    (dict(n=2.5), "n"),
    (dict(n=2, size=7), "size"),
    (dict(n=2, size=32.0), "size"),
    (dict(n=2, seed=-1), "seed"),
])
def test_bad_args(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tuxphoto.generate(**kwargs)


def test_missing_bank_dir(tmp_path):
    missing = tmp_path / "no_such_bank"
    with pytest.raises(FileNotFoundError, match="no_such_bank"):
        tuxphoto.generate(2, bank_dir=missing)
    with pytest.raises(FileNotFoundError, match="no_such_bank"):
        tuxphoto.class_names(missing)


def test_corrupt_index(tmp_path):
    bank = tmp_path / "bank"
    bank.mkdir()
    (bank / "index.json").write_text("{not json")
    with pytest.raises(ValueError, match="index.json"):
        tuxphoto.generate(2, bank_dir=bank)
    bank2 = tmp_path / "bank2"
    bank2.mkdir()
    (bank2 / "index.json").write_text(json.dumps({"classes": ["a"]}))
    with pytest.raises(ValueError, match="index.json"):
        tuxphoto.class_names(bank2)


def test_custom_bank_dir(tmp_path):
    # a copy of the bank with two classes works and labels follow its index
    src = tuxphoto.DEFAULT_BANK_DIR
    index = json.loads((src / "index.json").read_text())
    keep = index["classes"][:2]
    sprites = [s for s in index["sprites"] if s["class"] in keep][:6]
    keep = sorted({s["class"] for s in sprites})
    dst = tmp_path / "small"
    for s in sprites + index["backgrounds"][:2]:
        (dst / s["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / s["path"], dst / s["path"])
    (dst / "index.json").write_text(json.dumps(
        dict(classes=keep, sprites=sprites, backgrounds=index["backgrounds"][:2])))
    d = tuxphoto.generate(10, size=16, seed=0, bank_dir=dst)
    assert d["class_names"] == keep
    assert np.all(d["factors"]["background"] < 2)
    assert np.all(d["factors"]["instance"] < len(sprites))
