"""The dataset interface (ImageSet) and dataset specs, shared by the generated and file-backed loaders."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

SPLIT_SEED_OFFSET = {"train": 0, "test": 1_000_003}


@dataclass
class ImageSet:
    """A labelled image set: uint8 (N, C, H, W) images, int labels into ``class_names``, optional per-image
    factors, and the dataset's name."""
    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    factors: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"ImageSet.images: expected uint8 (N, C, H, W), got {self.images.dtype} "
                             f"{self.images.shape}")
        n = len(self.images)
        if len(self.labels) != n:
            raise ValueError(f"ImageSet.labels: expected {n} labels, got {len(self.labels)}")
        if n and (np.min(self.labels) < 0 or np.max(self.labels) >= len(self.class_names)):
            raise ValueError(f"ImageSet {self.name}: labels must lie in 0..{len(self.class_names) - 1} "
                             f"({len(self.class_names)} classes), got {np.min(self.labels)}..{np.max(self.labels)}")
        for k, v in self.factors.items():
            if len(v) != n:
                raise ValueError(f"ImageSet.factors[{k!r}]: expected {n} values, got {len(v)}")

    def __len__(self):
        return len(self.images)

    @property
    def size(self) -> int:
        """Image side in pixels."""
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        """Number of colour channels."""
        return self.images.shape[1]

    def float(self, idx=None) -> torch.Tensor:
        """The images (or those at ``idx``) as a float tensor in [0, 1]."""
        x = self.images if idx is None else self.images[idx]
        return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)

    def subset(self, idx) -> "ImageSet":
        """The ImageSet of the images at ``idx``, with their labels and factors."""
        idx = np.asarray(idx)
        return ImageSet(self.images[idx], self.labels[idx], self.class_names,
                        {k: v[idx] for k, v in self.factors.items()}, self.name)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """(name, path or None) of a dataset spec such as "tuxphoto" or "folder:/data/cifar10-train"."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"dataset: expected a spec like 'tuxphoto' or 'imagenet64:/path', got {spec!r}")
    name, _, path = spec.partition(":")
    return name.lower(), (path or None)


DATASETS = ("tuxphoto", "tuxphoto-object", "shapes", "imagenet64", "cifar10", "folder", "fashion-mnist")
