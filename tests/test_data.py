import numpy as np
import pytest

from lib.data.datasets import ImageSet, load_dataset


def test_shapes_dataset_deterministic_and_split():
    a = load_dataset("shapes", n=20, size=16, seed=1)
    b = load_dataset("shapes", n=10, size=16, seed=1)
    t = load_dataset("shapes", n=10, size=16, seed=1, split="test")
    assert a.images.shape == (20, 3, 16, 16) and a.images.dtype == np.uint8
    assert np.array_equal(a.images[:10], b.images)  # image i independent of n
    assert not np.array_equal(a.images[:10], t.images)
    assert set(a.factors) >= {"shape", "texture", "x", "y", "size"}
    assert np.array_equal(a.labels, a.factors["shape"])
    x = a.float()
    assert x.dtype.is_floating_point and 0 <= x.min() and x.max() <= 1


def test_tuxphoto_through_registry():
    d = load_dataset("tuxphoto", n=8, size=32, split="test")
    assert d.images.shape == (8, 3, 32, 32) and len(d.class_names) >= 10
    assert "instance" in d.factors and "background" in d.factors


@pytest.mark.parametrize("spec,kw,exc,msg", [
    ("mnist", {}, ValueError, "unknown dataset"),
    ("", {}, ValueError, "dataset"),
    ("shapes", {"split": "val"}, ValueError, "split"),
    ("shapes", {"n": -1}, ValueError, "n:"),
    ("shapes", {"size": 4}, ValueError, "size"),
    ("imagenet64:/does/not/exist", {}, FileNotFoundError, "/does/not/exist"),
    ("cifar10:/does/not/exist", {}, FileNotFoundError, "/does/not/exist"),
    ("folder:/does/not/exist", {}, FileNotFoundError, "/does/not/exist"),
])
def test_bad_specs(spec, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        load_dataset(spec, **{"n": 4, **kw})


def test_imageset_validation():
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(np.zeros((2, 3, 8, 8), np.float32), np.zeros(2), [])
    with pytest.raises(ValueError, match="labels"):
        ImageSet(np.zeros((2, 3, 8, 8), np.uint8), np.zeros(3), [])
