"""lib.data.files through lib.data.datasets.load_dataset, on tiny fake dataset trees built in tmp_path."""
import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib.data import files as filedata
from lib.data.datasets import load_dataset
from lib.data.files import FASHION_DIR, SafeUnpickler


# ------------------------------------------------------------------------------------------ fixtures
def planar(n, side, offset=0):
    """Rows of planar RGB where pixel (c, y, x) of row i holds (i + offset + 50c + y + 2x) mod 256."""
    i, c, y, x = np.ogrid[:n, :3, :side, :side]
    return ((i + offset + 50 * c + y + 2 * x) % 256).astype(np.uint8).reshape(n, 3 * side * side)


@pytest.fixture
def imagenet_dir(tmp_path):
    d = tmp_path / "imnet"
    d.mkdir()
    np.savez(d / "train_data_batch_1.npz", data=planar(3, 64), labels=np.array([1, 2, 3]), mean=np.zeros(12288))
    np.savez_compressed(d / "train_data_batch_2.npz", data=planar(2, 64, offset=3), labels=np.array([1000, 5]))
    np.savez(d / "val_data.npz", data=planar(4, 64, offset=100), labels=np.array([7, 8, 9, 10]))
    return d


class _Boom:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.fixture
def cifar_dir(tmp_path):
    d = tmp_path / "cifar" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name, rows, off in (("data_batch_1", 3, 0), ("data_batch_2", 2, 3), ("test_batch", 4, 100)):
        with open(d / name, "wb") as f:
            pickle.dump({b"batch_label": b"x", b"data": planar(rows, 32, off),
                         b"labels": [(i + off) % 10 for i in range(rows)]}, f)
    names = [s.encode() for s in ("airplane automobile bird cat deer dog frog horse ship truck".split())]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f)
    return d.parent


@pytest.fixture
def folder_dir(tmp_path):
    d = tmp_path / "folder"
    rng = np.random.default_rng(0)
    for cls, count in (("cats", 11), ("dogs", 3)):
        (d / cls).mkdir(parents=True)
        for i in range(count):
            w, h = (40 + 3 * i, 24 + i) if i % 2 else (20, 50)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / cls / f"{i:02d}.png")
    return d


# --------------------------------------------------------------------------------------- imagenet64
def test_imagenet64_planar_to_nchw_labels_and_order(imagenet_dir, monkeypatch):
    monkeypatch.setattr(filedata, "CHUNK", 2)  # exercise the chunked streaming of the zip member
    ds = load_dataset(f"imagenet64:{imagenet_dir}", n=4, size=64, split="train")
    assert ds.images.shape == (4, 3, 64, 64) and ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert ds.labels.tolist() == [0, 1, 2, 999]  # first n rows in file order, across batches, 1-based -> 0-based
    expect = planar(5, 64).reshape(5, 3, 64, 64)[:4]  # batch 2 continues the pattern at offset 3
    np.testing.assert_array_equal(ds.images, expect)
    assert ds.images[0, 1, 5, 7] == 50 + 5 + 14  # channel G, row 5, column 7
    assert ds.class_names[0] == "class_000" and len(ds.class_names) == 1000 and ds.factors == {}
    assert len(load_dataset(f"imagenet64:{imagenet_dir}", n=None, size=64)) == 5


def test_imagenet64_test_split_resize_and_class_file(imagenet_dir):
    (imagenet_dir / "map_clsloc.txt").write_text("".join(f"n{i:08d} {i + 1} name_{i}\n" for i in range(1000)))
    ds = load_dataset(f"imagenet64:{imagenet_dir}", n=None, size=32, split="test")
    assert ds.images.shape == (4, 3, 32, 32) and ds.labels.tolist() == [6, 7, 8, 9]
    full = planar(4, 64, 100).reshape(4, 3, 32, 2, 32, 2).astype(np.float64).mean(axis=(3, 5))
    np.testing.assert_array_equal(ds.images, np.rint(full).astype(np.uint8))
    assert ds.class_names[6] == "name_6"
    for n in (2, 0):
        with pytest.raises(ValueError, match="imagenet64: size 48 must divide.* 64"):
            load_dataset(f"imagenet64:{imagenet_dir}", n=n, size=48)
    with pytest.raises(ValueError, match="cifar10: size 64 must divide"):
        load_dataset(f"cifar10:{imagenet_dir}", size=64)


def test_imagenet64_errors(tmp_path, imagenet_dir):
    with pytest.raises(FileNotFoundError, match="imagenet64.*imagenet64:/path"):
        load_dataset("imagenet64", n=2)
    with pytest.raises(FileNotFoundError, match=f"imagenet64.*{tmp_path / 'nope'}"):
        load_dataset(f"imagenet64:{tmp_path / 'nope'}", n=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="train_data_batch_1.npz"):
        load_dataset(f"imagenet64:{tmp_path / 'empty'}", n=2)
    with pytest.raises(FileNotFoundError, match="val_data.npz"):
        load_dataset(f"imagenet64:{tmp_path / 'empty'}", n=2, split="test")
    np.savez(imagenet_dir / "val_data.npz", data=planar(2, 32), labels=np.array([1, 2]))  # 32x32 rows: 3072 wide
    with pytest.raises(ValueError, match=r"val_data\.npz.*\(N, 12288\).*3072"):
        load_dataset(f"imagenet64:{imagenet_dir}", n=2, split="test")


# ------------------------------------------------------------------------------------------ cifar10
def test_cifar10_batches_and_meta(cifar_dir):
    ds = load_dataset(f"cifar10:{cifar_dir}", n=4, size=32)  # finds cifar-10-batches-py/ inside
    assert ds.images.shape == (4, 3, 32, 32) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, planar(4, 32).reshape(4, 3, 32, 32))
    assert ds.labels.tolist() == [0, 1, 2, 3] and ds.labels.dtype == np.int64
    assert ds.class_names[:2] == ["airplane", "automobile"] and len(ds.class_names) == 10
    test = load_dataset(f"cifar10:{cifar_dir / 'cifar-10-batches-py'}", size=16, split="test")
    assert test.images.shape == (4, 3, 16, 16) and test.labels.tolist() == [0, 1, 2, 3]


def test_cifar10_refuses_malicious_pickle(tmp_path):
    d = tmp_path / "evil"
    d.mkdir()
    target = tmp_path / "pwned"
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _Boom(target), b"labels": [0]}, f)
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system|nt.system"):
        load_dataset(f"cifar10:{d}", n=1)
    assert not target.exists()
    u = SafeUnpickler(io.BytesIO(b"cbuiltins\neval\n(S'1'\ntR."), encoding="bytes")
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        u.load()
    assert callable(u.find_class("numpy.core.multiarray", "_reconstruct"))  # how the real (python 2) files name it


def test_cifar10_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar10.*missing"):
        load_dataset(f"cifar10:{tmp_path / 'missing'}")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_dataset(f"cifar10:{tmp_path}")


# ------------------------------------------------------------------------------------------- folder
def test_folder_split_shuffle_and_crop(folder_dir):
    train = load_dataset(f"folder:{folder_dir}", n=None, size=16, seed=0, split="train")
    test = load_dataset(f"folder:{folder_dir}", n=None, size=16, seed=0, split="test")
    assert train.class_names == ["cats", "dogs"] and train.factors == {}
    # index % 10 == 0 within each class goes to test: cats 00 and 10, dogs 00
    assert len(train) == 11 and len(test) == 3
    assert sorted(test.labels.tolist()) == [0, 0, 1] and sorted(train.labels.tolist()) == [0] * 9 + [1] * 2
    assert train.images.shape == (11, 3, 16, 16) and train.images.dtype == np.uint8
    a = load_dataset(f"folder:{folder_dir}", n=5, size=16, seed=3)
    b = load_dataset(f"folder:{folder_dir}", n=5, size=16, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert len(a) == 5


def test_folder_errors(tmp_path, folder_dir):
    with pytest.raises(FileNotFoundError, match="folder"):
        load_dataset("folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "empty" / "a").mkdir()
    with pytest.raises(ValueError, match="no images"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    (folder_dir / "dogs" / "05.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match="05.jpg"):
        load_dataset(f"folder:{folder_dir}", size=16, split="train")


# ------------------------------------------------------------------------------------ fashion-mnist
def _idx(path, arr):
    head = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}i", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_fake_idx(tmp_path):
    imgs = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 251
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 4]))
    ds = load_dataset(f"fashion-mnist:{tmp_path}", n=2, size=32, split="test")
    assert ds.images.shape == (2, 3, 32, 32) and ds.labels.tolist() == [9, 0]
    np.testing.assert_array_equal(ds.images[:, 1, 2:30, 2:30], imgs[:2])
    assert ds.images[:, :, :2].max() == 0 and ds.images[:, :, :, 30:].max() == 0
    assert ds.class_names[9] == "Ankle boot"
    with pytest.raises(FileNotFoundError, match="train-images.*apt-get install dataset-fashion-mnist"):
        load_dataset(f"fashion-mnist:{tmp_path}", split="train")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset(f"fashion-mnist:{tmp_path / 'nope'}")


@pytest.mark.skipif(not Path(FASHION_DIR, "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_debian_package():
    ds = load_dataset("fashion-mnist", n=100, size=16, split="test")
    assert ds.images.shape == (100, 3, 16, 16) and ds.labels.max() <= 9 and len(ds.class_names) == 10
