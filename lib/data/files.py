"""File-backed datasets for ``lib.data.datasets.load_dataset``: ImageNet 64x64, CIFAR-10, class folders, Fashion-MNIST.

    load(name, path, n=None, size=32, seed=0, split="train") -> ImageSet   (uint8 NCHW RGB, int64 labels)

Conventions (all deterministic):
- "imagenet64": directory of the downsampled-ImageNet npz batches (train_data_batch_1..10.npz for "train",
  val_data.npz for "test"; whatever train batches exist are used, in numeric order). Each has ``data``
  (uint8, N x 12288, planar RGB 3x64x64) and ``labels`` (1..1000 -> 0..999). ``n`` takes the first n rows in
  file order. No cache is written: the ``data`` member is streamed out of the zip (numpy .npy header, then
  only the rows needed), so n=5000 reads ~60 MB instead of decompressing a 1.5 GB batch. Class names come
  from ``map_clsloc.txt`` or ``classes.txt`` in the directory ("wnid index name" lines, or one name a line),
  else "class_000".."class_999".
- "cifar10": python batches (data_batch_1..5 / test_batch, in ``path`` or ``path/cifar-10-batches-py``),
  unpickled by ``SafeUnpickler``, which allows only the numpy globals an ndarray needs. First n rows.
- "folder": one sub-folder per class (sorted names), images found recursively. A file goes to "test" when its
  index in its class's sorted file list is a multiple of 10, else to "train"; the split is then shuffled with
  ``np.random.default_rng(seed)`` and the first n kept. Images: RGB, short side resized to ``size``
  (LANCZOS), centre crop.
- "fashion-mnist": idx(.gz) files from Debian's ``dataset-fashion-mnist`` (default
  /usr/share/datasets/fashion-mnist). 28x28 grey is zero-padded 2 px a side to 32x32 and replicated to 3
  channels so it feeds the RGB network unchanged. First n rows.
Native-resolution datasets (64 for imagenet64, 32 for cifar10/fashion-mnist) are downsampled by area
averaging when ``size`` divides the native size; any other size raises ValueError. ``factors`` is always {}.
"""
from __future__ import annotations

import gzip
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np

from lib.data.imageset import ImageSet

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
CHUNK = 4096  # rows converted at a time (bounds the float temporaries of the area resize)
ALL = 1 << 62  # "n=None" as a row budget


def load(name: str, path: str | None, n: int | None = None, size: int = 32, seed: int = 0,
         split: str = "train") -> ImageSet:
    """The ImageSet of file-backed dataset ``name`` read from ``path`` (conventions: the module docstring)."""
    native = {"imagenet64": 64, "cifar10": 32, "fashion-mnist": 32}.get(name)
    if native is not None:
        _check_size(size, native, name)  # fail before any I/O
    if name == "fashion-mnist":
        return _fashion(Path(path or FASHION_DIR), n, size, split, default=path is None)
    loaders = {"imagenet64": _imagenet64, "cifar10": _cifar10, "folder": _folder}
    if name not in loaders:
        raise ValueError(f"filedata: unknown dataset {name!r}; expected one of {sorted(loaders) + ['fashion-mnist']}")
    if path is None:
        raise FileNotFoundError(f"{name}: no directory given; use a spec like '{name}:/path/to/dir'")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: directory {str(root)!r} does not exist")
    return loaders[name](root, n, size, seed, split)


# ---------------------------------------------------------------------------------------------- helpers
def _check_size(size: int, src: int, what: str) -> None:
    if size > src or src % size:
        raise ValueError(f"{what}: size {size} must divide the native resolution {src} (area downsampling only)")


def _area_resize(x: np.ndarray, size: int, what: str) -> np.ndarray:
    """uint8 (N, C, S, S) -> (N, C, size, size) by averaging f x f blocks, f = S // size."""
    src = x.shape[-1]
    if size == src:
        return x
    _check_size(size, src, what)
    f = src // size
    y = x.reshape(len(x), x.shape[1], size, f, size, f).mean(axis=(3, 5), dtype=np.float32)
    return np.rint(y).astype(np.uint8)


def _planar_to_images(rows: np.ndarray, side: int, size: int, what: str) -> np.ndarray:
    """(N, 3*side*side) planar RGB rows -> uint8 (N, 3, size, size), converted CHUNK rows at a time."""
    out = np.empty((len(rows), 3, size, size), np.uint8)
    for i in range(0, len(rows), CHUNK):
        out[i:i + CHUNK] = _area_resize(np.asarray(rows[i:i + CHUNK]).reshape(-1, 3, side, side), size, what)
    return out


def _take(n: int | None, total: int) -> int:
    return total if n is None else min(int(n), total)


# ------------------------------------------------------------------------------------------- imagenet64
IMNET_ROW = 3 * 64 * 64


def npz_data_header(file: Path) -> tuple[tuple, np.dtype]:
    """Shape and dtype of the ``data`` member of an npz, read from its .npy header only."""
    try:
        with zipfile.ZipFile(file) as z, z.open("data.npy") as f:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read[version](f)
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ValueError(f"imagenet64: {file}: not an npz with a 'data' array ({e})") from e
    if fortran or dtype != np.uint8 or len(shape) != 2 or shape[1] != IMNET_ROW:
        raise ValueError(f"imagenet64: {file}: expected 'data' uint8 of shape (N, {IMNET_ROW}) "
                         f"(planar RGB 3x64x64), got {dtype} {shape}{' fortran-order' if fortran else ''}")
    return shape, dtype


def _npz_data_chunks(file: Path, k: int):
    """Yield the first k rows of ``data`` CHUNK rows at a time, streamed from the zip member."""
    with zipfile.ZipFile(file) as z, z.open("data.npy") as f:
        version = np.lib.format.read_magic(f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        for i in range(0, k, CHUNK):
            m = min(CHUNK, k - i)
            buf = f.read(m * IMNET_ROW)
            if len(buf) != m * IMNET_ROW:
                raise ValueError(f"imagenet64: {file}: 'data' is truncated (wanted {k} rows)")
            yield np.frombuffer(buf, np.uint8).reshape(m, IMNET_ROW)


def _imagenet_class_names(root: Path) -> list[str]:
    for fname in ("map_clsloc.txt", "classes.txt"):
        f = root / fname
        if not f.is_file():
            continue
        names = {}
        for i, line in enumerate(ln.strip() for ln in f.read_text().splitlines() if ln.strip()):
            tok = line.split()
            if len(tok) >= 3 and tok[1].isdigit():  # "n02119789 1 kit_fox"
                names[int(tok[1]) - 1] = " ".join(tok[2:])
            else:
                names[i] = line
        if sorted(names) != list(range(1000)):
            raise ValueError(f"imagenet64: {f}: expected 1000 class names indexed 1..1000, got {len(names)}")
        return [names[i] for i in range(1000)]
    return [f"class_{i:03d}" for i in range(1000)]


def imagenet_files(root: Path, split: str) -> list[Path]:
    """The npz batches of ``split`` in numeric order; FileNotFoundError naming what was expected if none."""
    if split == "train":
        pat = re.compile(r"train_data_batch_(\d+)(\.npz)?$")
        found = [(int(m.group(1)), p) for p in root.iterdir() if (m := pat.match(p.name))]
        files = [p for _, p in sorted(found)]
    else:
        files = [p for p in (root / "val_data.npz", root / "val_data") if p.is_file()][:1]
    if not files:
        want = "train_data_batch_1.npz .. train_data_batch_10.npz" if split == "train" else "val_data.npz"
        raise FileNotFoundError(f"imagenet64: no {split} batches in {str(root)!r}; expected {want}")
    return files


def _imagenet64(root: Path, n, size, seed, split) -> ImageSet:
    files = imagenet_files(root, split)
    plan, remaining = [], _take(n, ALL)
    for f in files:
        if remaining == 0:
            break
        shape, _ = npz_data_header(f)
        plan.append((f, min(shape[0], remaining)))
        remaining -= plan[-1][1]
    images = np.empty((sum(k for _, k in plan), 3, size, size), np.uint8)
    labels = np.empty(len(images), np.int64)
    at = 0
    for f, k in plan:
        with np.load(f, allow_pickle=False) as z:
            lab = np.asarray(z["labels"]).reshape(-1)
        if lab.min(initial=1) < 1 or lab.max(initial=1) > 1000:
            raise ValueError(f"imagenet64: {f}: labels must lie in 1..1000, got {lab.min()}..{lab.max()}")
        if len(lab) < k:
            raise ValueError(f"imagenet64: {f}: {len(lab)} labels for {k} images")
        labels[at:at + k] = lab[:k].astype(np.int64) - 1
        for rows in _npz_data_chunks(f, k):
            images[at:at + len(rows)] = _planar_to_images(rows, 64, size, f"imagenet64: {f}")
            at += len(rows)
    return ImageSet(images, labels, _imagenet_class_names(root), {}, "imagenet64")


# ---------------------------------------------------------------------------------------------- cifar10
class SafeUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR python batches: refuses every global but the numpy ndarray machinery."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        """The numpy global ``module.name`` if ALLOWED, else an UnpicklingError."""
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (only numpy arrays are allowed)")
        if name == "_reconstruct":  # numpy 2 moved it to numpy._core; don't touch the deprecated numpy.core shim
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def _unpickle(file: Path):
    with open(file, "rb") as f:
        try:
            return SafeUnpickler(f, encoding="bytes").load()
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"cifar10: {file}: {e}") from e


def _cifar10(root: Path, n, size, seed, split) -> ImageSet:
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    files = [root / b for b in names if (root / b).is_file()]
    if not files:
        raise FileNotFoundError(f"cifar10: no {split} batches in {str(root)!r}; expected {' '.join(names)}")
    meta = root / "batches.meta"
    class_names = ([s.decode() if isinstance(s, bytes) else str(s) for s in _unpickle(meta)[b"label_names"]]
                   if meta.is_file() else [f"class_{i}" for i in range(10)])
    images, labels, left = [], [], _take(n, ALL)
    for f in files:
        if left == 0:
            break
        d = _unpickle(f)
        data = np.asarray(d.get(b"data") if isinstance(d, dict) else None)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"cifar10: {f}: expected b'data' uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
        lab = np.asarray(d.get(b"labels", []), np.int64)
        if len(lab) != len(data):
            raise ValueError(f"cifar10: {f}: {len(data)} images but {len(lab)} labels")
        if len(lab) and (lab.min() < 0 or lab.max() >= len(class_names)):
            raise ValueError(f"cifar10: {f}: labels must lie in 0..{len(class_names) - 1} (the classes of "
                             f"{meta.name if meta.is_file() else 'CIFAR-10'}), got {lab.min()}..{lab.max()}")
        k = min(len(data), left)
        images.append(_planar_to_images(data[:k], 32, size, f"cifar10: {f}"))
        labels.append(lab[:k])
        left -= k
    return ImageSet(np.concatenate(images), np.concatenate(labels), class_names, {}, "cifar10")


# ----------------------------------------------------------------------------------------------- folder
def _load_image(file: Path, size: int) -> np.ndarray:
    from PIL import Image
    try:
        with Image.open(file) as im:
            im = im.convert("RGB")
    except Exception as e:  # PIL raises OSError, UnidentifiedImageError, SyntaxError... on bad files
        raise ValueError(f"folder: cannot decode image {file}: {e}") from e
    w, h = im.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    im = im.resize((nw, nh), Image.Resampling.LANCZOS)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)), np.uint8).transpose(2, 0, 1)


def _folder(root: Path, n, size, seed, split) -> ImageSet:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"folder: {str(root)!r} has no class sub-folders; expected <dir>/<class>/<image>")
    items, total = [], 0
    for c, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        items += [(f, c) for i, f in enumerate(files) if (i % 10 == 0) == (split == "test")]
        total += len(files)
    if total == 0:
        raise ValueError(f"folder: no images ({'/'.join(sorted(IMAGE_EXTS))}) under the class folders of {str(root)!r}")
    order = np.random.default_rng(seed).permutation(len(items))[:_take(n, len(items))]
    images = np.empty((len(order), 3, size, size), np.uint8)
    for j, i in enumerate(order):
        images[j] = _load_image(items[i][0], size)
    labels = np.array([items[i][1] for i in order], np.int64)
    return ImageSet(images, labels, classes, {}, "folder")


# ---------------------------------------------------------------------------------------- fashion-mnist
def _read_idx(file: Path) -> np.ndarray:
    """Parse an idx file (optionally gzipped): magic 0,0,type=0x08 (ubyte),ndim; big-endian int32 dims; data."""
    with (gzip.open if file.suffix == ".gz" else open)(file, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] != 0x08:
        raise ValueError(f"fashion-mnist: {file}: not an unsigned-byte idx file")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, ">i4", ndim, 4))
    body = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"fashion-mnist: {file}: header says {dims} but holds {body.size} bytes")
    return body.reshape(dims)


def _fashion(root: Path, n, size, split, default: bool) -> ImageSet:
    hint = ("install it with `apt-get install dataset-fashion-mnist`"
            + (f" (files land in {FASHION_DIR})" if default else ""))
    if not root.is_dir():
        raise FileNotFoundError(f"fashion-mnist: directory {str(root)!r} does not exist; {hint}")
    stem = "train" if split == "train" else "t10k"
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        cands = [root / f"{stem}-{kind}{ext}" for ext in (".gz", "")]
        f = next((c for c in cands if c.is_file()), None)
        if f is None:
            raise FileNotFoundError(f"fashion-mnist: missing {cands[0].name} in {str(root)!r}; {hint}")
        found.append(_read_idx(f))
    imgs, lab = found
    if imgs.ndim != 3 or imgs.shape[1:] != (28, 28) or len(lab) != len(imgs):
        raise ValueError(f"fashion-mnist: expected (N, 28, 28) images and N labels, got {imgs.shape} and {lab.shape}")
    k = _take(n, len(imgs))
    x = np.zeros((k, 3, 32, 32), np.uint8)
    x[:, :, 2:30, 2:30] = imgs[:k, None]
    return ImageSet(_area_resize(x, size, "fashion-mnist"), lab[:k].astype(np.int64), list(FASHION_CLASSES),
                    {}, "fashion-mnist")
