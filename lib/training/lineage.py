"""Training that outlives its machine: a run continued from a shipped checkpoint, and the lineage of its legs.

A *leg* is one stretch of training on one machine. ``python -m scripts.train --config C --continue
data/checkpoints/NAME`` starts a new leg from a shipped checkpoint (weights, metadata, log) instead of from
scratch. What a continuation needs, and where it comes from:

- the weights: ``NAME.safetensors`` (fp32, exactly the trained ones);
- the position: ``step`` and ``images_seen`` in ``NAME.json``; the data order and the noise of every step
  are functions of (seed, step) (``lib.training.recipe.BatchStream``, ``noise_for_step``), so the next leg
  draws exactly the batches the uninterrupted run would have drawn;
- the settings: ``train_config`` and ``history`` in ``NAME.json``, checked against the new config like a
  resume (``TrainConfig.compatible`` must match; ``schedule_fields`` may change only with ``--allow-changes``,
  and each change is recorded);
- the data: ``data_sha256``, a hash of the uint8 training pool; continuing on other images is refused
  unless ``--allow-changes``, and then recorded in the leg;
- the optimizer: ``NAME.optim.safetensors`` when the checkpoint was shipped with it (``scripts.ship
  --with-optimizer``): the continuation is then bit-identical to an uninterrupted run. Without it Adam's
  moments are *re-estimated*: ``reestimate_adam`` runs the last K batches of the data order again through
  Adam at lr 0 (the weights do not move; both moments and Adam's bias correction then stand as they would
  K steps into a fresh run, on today's weights). Our shipped CIFAR-10 checkpoint carries no optimizer state:
  Adam's two moments would add 27 MB of history per leg, twice the weights' 13.7 MB.
- the lineage: ``lineage`` in the metadata, one record per leg (where it started, from which weights,
  how the optimizer was restored, on which data, how far it went); the card prints it and ``log.jsonl``
  keeps every leg's records, each leg opened by a ``{"kind": "continue"}`` record.
"""
from __future__ import annotations

import hashlib
import platform
import time

import numpy as np
import torch

LEG_KEYS = ("leg", "start_step", "start_images", "from_sha256", "optimizer", "data_sha256")  # fixed at a leg's start
DEFAULT_REESTIMATE_STEPS = 250


def data_fingerprint(pool: np.ndarray) -> str:
    """sha256 (16 hex digits) of the training pool's uint8 bytes and shape: the data a run trains on."""
    h = hashlib.sha256(repr(tuple(pool.shape)).encode())
    for i in range(0, len(pool), 4096):  # in slices: a memory-mapped pool is never read whole into memory
        h.update(np.ascontiguousarray(pool[i:i + 4096]).tobytes())
    return h.hexdigest()[:16]


def lineage_of(meta: dict) -> list[dict]:
    """The legs recorded in a checkpoint's metadata; a checkpoint from before lineage was recorded is one leg
    from scratch (its images and wall time are those of the metadata)."""
    if meta.get("lineage"):
        return [dict(leg) for leg in meta["lineage"]]
    tc = meta.get("train_config", {})
    return [{"leg": 0, "start_step": 0, "start_images": 0, "from_sha256": None, "optimizer": "fresh (from scratch)",
             "data_sha256": None, "seed": tc.get("seed"), "end_step": meta.get("step", 0),
             "end_images": meta.get("images_seen", 0), "wall_s": meta.get("wall_s", 0.0)}]


def new_leg(lineage: list[dict], step: int, images_seen: int, from_sha256: str | None, optimizer: str,
            data_sha256: str) -> dict:
    """The record of a leg that starts now at ``step`` (its end is filled in as it trains)."""
    return {"leg": len(lineage), "start_step": step, "start_images": images_seen, "from_sha256": from_sha256,
            "optimizer": optimizer, "data_sha256": data_sha256, "end_step": step, "end_images": images_seen,
            "wall_s": 0.0, "started": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
            "machine": platform.machine()}


def same_legs(a: dict, b: dict) -> bool:
    """Whether two leg records agree on everything fixed at a leg's start (LEG_KEYS)."""
    return all(a.get(k) == b.get(k) for k in LEG_KEYS)


def descends_from(lineage: list[dict], ancestor: list[dict]) -> bool:
    """Whether a run with ``lineage`` went on from a checkpoint with ``ancestor``: the ancestor's legs start
    it, in order (its last leg may have gone further in the descendant)."""
    return len(lineage) >= len(ancestor) and all(same_legs(x, y) for x, y in zip(ancestor, lineage))


def last_data_sha256(lineage: list[dict]) -> str | None:
    """The data fingerprint of the latest leg that recorded one (None if none did)."""
    for leg in reversed(lineage):
        if leg.get("data_sha256"):
            return leg["data_sha256"]
    return None


def reestimate_adam(model: torch.nn.Module, opt: torch.optim.Adam, loss_of, steps: int) -> None:
    """Fill Adam's moments from ``steps`` gradients at lr 0, without moving the weights.

    ``loss_of(i)`` returns the training loss of the i-th of the ``steps`` batches (in the trainer: the last
    ``steps`` batches of the data order before the checkpoint). The optimizer must be fresh.
    At lr 0 Adam's update is exactly zero, so the weights are unchanged, and after ``steps`` calls its
    bias-corrected moments m_hat, v_hat are the averages (weighted by beta^age) of g and g^2 over those
    batches, the state of a run ``steps`` steps in. Afterwards the param groups' lr is restored.
    """
    if opt.state:
        raise ValueError("reestimate_adam: the optimizer already holds state; re-estimate only a fresh one")
    if steps < 1:
        raise ValueError(f"reestimate_adam: steps must be >= 1, got {steps}")
    saved = [g["lr"] for g in opt.param_groups]
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was = model.training
    model.train()
    try:
        for g in opt.param_groups:
            g["lr"] = 0.0
        for i in range(steps):
            loss = loss_of(i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
    finally:
        for g, lr in zip(opt.param_groups, saved):
            g["lr"] = lr
        model.train(was)
    for k, v in model.state_dict().items():  # lr 0 moves nothing; a buffer updated by the forward is restored
        if not torch.equal(v, before[k]):
            v.copy_(before[k])


def lineage_markdown(lineage: list[dict]) -> list[str]:
    """The card's lineage table: one row per leg."""
    total = lineage[-1].get("end_images", 0) if lineage else 0
    rows = [f"Lineage: {len(lineage)} leg(s), {total:,} images seen in all (`lib.training.lineage`; each leg "
            "continued the one before with `python -m scripts.train --config ... --continue <checkpoint>`):", "",
            "| leg | images seen | steps | started from | optimizer | data sha256 | wall time |",
            "|---|---|---|---|---|---|---|"]
    for leg in lineage:
        src = f"weights `{leg['from_sha256']}`" if leg.get("from_sha256") else "scratch"
        rows.append(f"| {leg['leg']} | {leg['start_images']:,} → {leg.get('end_images', 0):,} | "
                    f"{leg['start_step']} → {leg.get('end_step', 0)} | {src} | {leg['optimizer']} | "
                    f"`{leg.get('data_sha256') or 'not recorded'}` | {leg.get('wall_s', 0) / 60:.1f} min |")
    return rows + [""]
