"""Benchmark: self-guided reconstruction, the authors' "reference" backward preset against our "fast"
presets (backward and forward form), and what the samples keep of their target.

    python -m scripts.bench_sampler [--checkpoint data/checkpoints/tux32] [--quick]

Every preset runs on the same batch (T held-out tuxphoto targets x S samples each) for each seed of
``seeds``. Reported per preset (``sampler_{reference,fast,forward_fast}_*``): nfe (network calls per batch,
lib.sampling.samplers), wall time, phi relative error (`lib.sampling.samplers.phi_error`) and
diversity (mean pairwise RMSE among the S samples of a target) as means over seeds with their spread
(``_sd``: standard deviation over seeds), PSNR to the target, final effective sigma (how much "noise" the
denoiser still sees in a sample). ``sampler_nfe_ratio`` / ``sampler_wall_ratio``: reference over the fast
backward preset (``sampler_forward_nfe_ratio``: over the fast forward one). The forward form's reference
cost is estimated, not run: thousands of ascent steps, each with a full projection.

What the samples keep (lib.measure.kept): factor readers (a probe on phi, kNN on pixels) are fitted on
real images of the train split; ``kept_factor`` is the factor and reader that read real held-out images
best (Cohen's kappa); ``guided_kept_factor_acc`` is the fraction of fast backward samples (all seeds)
whose predicted factor is their target's, ``unconditional_kept_factor_acc`` the same for unconditional
samples (the authors' ascent settings) matched to a random target, ``target_kept_factor_acc`` the reader
on the targets themselves, ``second_real_kept_factor_acc`` on another real image with the target's value.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from lib.data.datasets import load_dataset
from lib.measure.kept import dataset_factors, fit_readers, kept_factor, kept_table
from lib.model.checkpoint import checkpoint_file, load_model
from lib.sampling import samplers as S
from lib.sampling.quality import ascent_steps, phi_spread, summarize

POOL_IMAGES = 256      # held-out images: targets (from the first 64), second real images, reader accuracy
READER_IMAGES = 2000   # train-split images the factor readers are fitted on
RUNS = (("reference", "backward", "reference"), ("fast", "backward", "fast"), ("forward_fast", "forward", "fast"))


def resolve_checkpoint(checkpoint: str) -> str:
    """The shipped checkpoint, or the training run's snapshot while it is not shipped yet."""
    if checkpoint_file(checkpoint, ".safetensors").is_file():
        return checkpoint
    return "runs/tux32/model"


def _aggregate(rows: list[dict]) -> dict:
    """Means over seeds; the spread (sd over seeds) of phi_rel_err and diversity."""
    out = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0] if k != "steps"}
    out["nfe"] = int(round(np.mean([r["nfe"] for r in rows])))
    for k in ("phi_rel_err", "diversity"):
        out[f"{k}_sd"] = round(float(np.std([r[k] for r in rows])), 4)
    return out


def run(checkpoint="data/checkpoints/tux32", quick=False, n_targets=8, n_samples=2, seeds=(0, 1),
        progress=False) -> dict:
    """The benchmark of the module docstring on ``checkpoint``: one flat dict of ``sampler_*`` and ``*kept_factor*``
    numbers (``quick``: 2 targets, one seed, short schedules)."""
    model = load_model(resolve_checkpoint(checkpoint))
    n_pool, n_readers = POOL_IMAGES, READER_IMAGES
    if quick:
        n_targets, n_samples, seeds, n_pool, n_readers = 2, 2, (0,), 64, 300
    size = model.config.image_size
    pool = load_dataset("tuxphoto", n_pool, size=size, split="test")
    tidx = np.linspace(0, min(63, n_pool - 1), n_targets).astype(int)
    x = pool.float()
    targets, mean = x[tidx], x.mean((0, 2, 3))
    quick_sched = [1.0, 0.3, 0.1, 0.03]
    over = {"reference": dict(schedule=quick_sched, projection=dict(iters=5)) if quick else {},
            "fast": dict(schedule=quick_sched) if quick else {},
            "forward_fast": dict(schedule=dict(sigma_L=0.3)) if quick else {}}
    out = {"sampler_batch": f"{n_targets} targets x {n_samples} samples, {size}x{size}, "
                            f"{Path(resolve_checkpoint(checkpoint)).name}, seeds {list(seeds)}"}
    spread = phi_spread(model, x[:64])
    samples, ref_iters = {}, []
    for key, form, preset in RUNS:
        rows = []
        for seed in seeds:
            r = S.self_guided(model, targets, n_samples, preset=preset, form=form, mean=mean,
                              generator=torch.Generator().manual_seed(seed), progress=progress, **over[key])
            rows.append(summarize(r, targets, n_samples, model, spread, digits=False))
            samples.setdefault(key, []).append(r.samples)
            if key == "reference":
                ref_iters.append(r.info["mean_proj_iters"])
        for k, v in _aggregate(rows).items():
            out[f"sampler_{key}_{k}"] = v
    # Forward form, reference settings: steps of the ascent from sigma0 to sigma_L, each with a projection
    # costing 1 + 2 x (mean Adam iterations measured above) calls and one score forward.
    steps = ascent_steps(S.PRESETS[("forward", "reference")].schedule)
    out["sampler_forward_reference_steps_estimate"] = steps
    out["sampler_forward_reference_nfe_estimate"] = int(steps * (2 + 2 * float(np.mean(ref_iters))) + 1)
    out["sampler_nfe_ratio"] = round(out["sampler_reference_nfe"] / out["sampler_fast_nfe"], 1)
    out["sampler_forward_nfe_ratio"] = round(out["sampler_reference_nfe"] / out["sampler_forward_fast_nfe"], 1)
    out["sampler_wall_ratio"] = round(out["sampler_reference_wall_s"] / max(out["sampler_fast_wall_s"], 1e-9), 1)
    out.update(kept_keys(model, pool, tidx, samples, n_samples, mean, n_readers, quick, progress))
    return out


def kept_keys(model, pool, tidx, samples: dict, n_samples: int, mean, n_readers: int, quick: bool,
              progress: bool) -> dict:
    """The kept-factor keys (module docstring) for the bench's samples {run: [samples per seed]}."""
    train = load_dataset("tuxphoto", n_readers, size=pool.size, split="train")
    factors = dataset_factors(pool)
    readers = fit_readers(model, train.float(), {k: v for k, v in dataset_factors(train).items() if k in factors})
    n_unc = len(tidx) * n_samples
    sched = S.UNCONDITIONAL_PRESETS["reference"]
    if quick:
        sched = dataclasses.replace(sched, max_steps=20)
    unc = S.sample_unconditional(model, S.flat_start(model, n_unc, mean), sched,
                                 generator=torch.Generator().manual_seed(0), progress=progress)
    seeds = len(samples["fast"])
    guided = torch.cat(samples["fast"])
    tidx_all = np.tile(np.asarray(tidx), seeds)  # each seed's batch is target-major over the same targets
    rows = kept_table(model, readers, pool.float(), factors, tidx_all, guided, n_samples, unc.samples)
    best = kept_factor(rows)
    ref = kept_table(model, {best["factor"]: readers[best["factor"]]}, pool.float(), factors,
                     np.tile(np.asarray(tidx), len(samples["reference"])), torch.cat(samples["reference"]), n_samples)
    ref_acc = next(r["guided"] for r in ref if r["reader"] == best["reader"])
    return {"kept_factor": f"{best['factor']} ({best['reader']})", "kept_factor_n_samples": best["n"],
            "guided_kept_factor_acc": round(best["guided"], 4),
            "guided_kept_factor_ci_low": round(best["guided_ci_low"], 4),
            "guided_kept_factor_ci_high": round(best["guided_ci_high"], 4),
            "reference_kept_factor_acc": round(ref_acc, 4),
            "unconditional_kept_factor_acc": round(best["unconditional"], 4),
            "target_kept_factor_acc": round(best["target"], 4),
            "second_real_kept_factor_acc": round(best["second_real"], 4),
            "unconditional_steps": unc.steps, "unconditional_nfe": unc.nfe}
