"""What every notebook does first: pick the device, load the checkpoint and a held-out set, build the
untrained control network, and point figures at figures/<notebook>/.

    ctx = setup("01_denoising_sparsity", CHECKPOINT, DATASET, DEVICE, SMOKE, SEED, N_IMAGES)
    ctx.model, ctx.untrained, ctx.data (ImageSet), ctx.images (float tensor), ctx.device, ctx.fig_dir
    trained_phi(ctx, sigma, n_noise, blocks, cache=PHI_CACHE)   # lib.representation.cache: from a
                                                                # lib.representation.extract cache if given

SMOKE=True swaps in the tiny shipped checkpoint and a handful of images, so a notebook runs in seconds.
`setup` also tells `lib.notebook.plots` what every figure's title line says (checkpoint, N, and the sigma parameter
`lib.notebook.catalog` names for the figure, read from the calling notebook's globals when the figure is saved);
`lib.notebook.numbers.write_numbers(ctx, {...})` writes the notebook's key numbers next to its figures.
"""
from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

from lib.core.device import apply_threads, pick_device, seed_everything
from lib.core.paths import CHECKPOINTS, FIGURES, resolve
from lib.data.datasets import load_dataset
from lib.measure.readout import untrained_twin
from lib.model.checkpoint import load_model
from lib.notebook.plots import set_context, set_figure_dir, set_style

SMOKE_CHECKPOINT = CHECKPOINTS / "tiny16"
SMOKE_IMAGES = 48


def setup(name: str, checkpoint: str, dataset: str, device: str = "auto", smoke: bool = False,
          seed: int = 0, n_images: int = 1000, size: int | None = None, figures: str | None = None,
          threads: int = 0, namespace: dict | None = None) -> SimpleNamespace:
    """``namespace``: the notebook's globals (default: the caller's), for the figures' title lines."""
    t0 = time.time()
    if int(n_images) < 1:
        raise ValueError(f"N_IMAGES: expected at least 1 held-out image, got {n_images!r}")
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    apply_threads(int(threads))  # 0: the idle cores (lib.core.device.choose_threads)
    seed_everything(seed)
    dev = pick_device(device)
    ckpt = SMOKE_CHECKPOINT if smoke else resolve(checkpoint)
    model = load_model(ckpt, device=dev)
    size = int(size or model.config.image_size)
    n = min(int(n_images), SMOKE_IMAGES) if smoke else int(n_images)
    data = load_dataset(dataset, n=n, size=size, seed=seed, split="test")
    untrained = untrained_twin(model, seed)  # the readout's control: the model's configuration, weights from SEED
    if figures:
        fig_dir = set_figure_dir(figures)
    elif os.environ.get("LIB_FIGURES_DIR"):  # set by the runner (tests point it at a temp folder)
        fig_dir = set_figure_dir(os.path.join(os.environ["LIB_FIGURES_DIR"], name))
    else:
        fig_dir = set_figure_dir(FIGURES / name)
    set_style()
    meta = getattr(model, "checkpoint_metadata", {})
    ctx = SimpleNamespace(name=name, model=model, untrained=untrained, data=data, images=data.float(),
                          device=dev, fig_dir=fig_dir, checkpoint=str(ckpt), smoke=smoke, seed=seed,
                          size=size, meta=meta, dataset=dataset, checkpoint_name=ckpt.name)
    set_context(name, ckpt.name, len(data), dataset, meta.get("images_seen"), namespace, smoke)
    print(f"{name}: checkpoint {ckpt} ({meta.get('images_seen', '?')} images seen), dataset {dataset} "
          f"({len(data)} held-out images, {size}px, {len(data.class_names)} classes), device {dev}, "
          f"figures -> {fig_dir} [{time.time() - t0:.1f}s]")
    return ctx
