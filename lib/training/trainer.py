"""Blind denoiser training: ``python -m scripts.train --config configs/tux32.json [--key value ...]``.

y = x + sigma z with one sigma per image (sigma = u^2 by default, u ~ U[0, 1], times sigma_max);
loss = squared error of D(y) against x summed over pixels, averaged over the batch; Adam with a step
or cosine schedule; optional bf16 autocast and channels_last; seeded data order and noise that depend
only on (seed, step), so a resumed run reproduces an uninterrupted one exactly.

Files in --out: state.safetensors (weights + optimizer + progress, written atomically at every
checkpoint), model.safetensors/model.json (the exported model), log.jsonl (one JSON record per line),
snapshots/ (optional copies of the model every ``snapshot_every_images``), .lock (held while a process
trains into the folder: a second process on the same --out is refused).

Resuming (rerun the same command): the settings that define the run (`TrainConfig.compatible`) must be
unchanged; the ones that change the trained numbers from here on (lr, schedule, total_images, amp...,
`TrainConfig.schedule_fields`) are refused too unless --allow-changes, and then each change is recorded
in the run's ``history`` (step, old and new values) next to the settings now in force, so the exported
metadata never claims that the whole run used the new ones. Logging and checkpoint intervals, device and
threads may change freely. A torn last line of log.jsonl (a kill during a write) is dropped on resume.
If the output folder becomes unwritable mid-run, the current state is saved to a temporary folder and
the error says where; the last checkpoint in --out is left intact.
Continuing a shipped checkpoint on another machine (``--continue data/checkpoints/NAME``) starts a new leg
of the same run from its weights and position; ``lib.training.lineage`` says what it needs and records every
leg. ``ema_decay`` > 0 keeps an exponential moving average of the weights beside the raw ones (it does not
change the training): ``ema/`` in --out holds it as a run of its own (``ema/model``, ``ema/snapshots/``), so that
``scripts.curves``, ``scripts.ship`` and the notebooks read it like any run.
Launched by ``torchrun --nproc_per_node=K`` it trains with DistributedDataParallel (gloo on CPU, nccl
on GPU); each rank takes its slice of the same global batch.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from lib.core.checks import parse_amp
from lib.core.device import apply_threads, autocast, pick_device, seeded_generator, to_channels_last
from lib.core.files import atomic_write_bytes, atomic_write_json, exclusive_lock
from lib.core.hashing import weights_sha256
from lib.core.metrics import psnr
from lib.data.pools import open_pool
from lib.measure.denoising import EVAL_SIGMAS
from lib.model.checkpoint import (
    atomic_save_tensors,
    checkpoint_file,
    load_optimizer,
    load_state,
    optimizer_tensors,
    read_config,
    read_tensors,
    save_model,
)
from lib.model.unet import UNet, preset
from lib.training.evidence import evidence_sets, model_evidence
from lib.training.lineage import (
    DEFAULT_REESTIMATE_STEPS,
    data_fingerprint,
    descends_from,
    last_data_sha256,
    lineage_of,
    new_leg,
    reestimate_adam,
)
from lib.training.recipe import (
    BatchStream,
    TrainConfig,
    changes,
    lr_at,
    noise_for_step,
    snapshot_due,
)


def cached_images(cfg: TrainConfig, n: int, split: str) -> np.ndarray:
    """The first ``n`` images of ``split``, converted once to a uint8 .npy under ``data_cache`` and
    memory-mapped read-only (lib.data.pools: the pool is keyed by every setting and by the source
    files' paths, sizes and mtimes, so replaced images are converted again, never silently reused).
    Under torchrun rank 0 converts and the other ranks wait for it."""
    rank = int(os.environ.get("RANK", "0"))
    images, _ = open_pool(cfg.dataset, split, cfg.size, n, cfg.seed, cfg.data_cache, build=rank == 0,
                          progress=False, wait_s=0 if rank == 0 else 24 * 3600)
    if len(images) == 0:
        raise ValueError(f"dataset {cfg.dataset}: the {split} split has no images (size {cfg.size})")
    return images


@torch.inference_mode()
def evaluate(model, val: torch.Tensor, device, amp, sigmas=EVAL_SIGMAS, seed: int = 1234) -> dict:
    """Mean PSNR of the noisy input and of D(y) on ``val`` at each sigma (fixed noise)."""
    was = model.training
    model.eval()
    res = {}
    for i, s in enumerate(sigmas):
        z = torch.randn(val.shape, generator=seeded_generator(seed, i))
        y = val + s * z
        outs = []
        for b in range(0, len(val), 128):
            with autocast(device, amp):
                outs.append(model(y[b:b + 128].to(device)).float().cpu())
        out = torch.cat(outs).clamp(0, 1)
        res[str(s)] = {"input": round(psnr(y.clamp(0, 1), val).mean().item(), 3),
                       "output": round(psnr(out, val).mean().item(), 3)}
    model.train(was)
    return res


class Trainer:
    """One training run into ``cfg.out``: fresh, resumed from the folder's state, or (``continue_from``, a
    shipped checkpoint stem) continued as a new leg of the run that checkpoint came from, with Adam's moments
    taken from ``<stem>.optim.safetensors`` or re-estimated over ``reestimate_steps`` batches."""

    def __init__(self, cfg: TrainConfig, allow_changes: bool = False, continue_from: str | Path | None = None,
                 reestimate_steps: int = DEFAULT_REESTIMATE_STEPS):
        self.cfg, self.allow_changes = cfg, allow_changes
        self.continue_from = Path(continue_from) if continue_from is not None else None
        self.reestimate_steps = int(reestimate_steps)
        if self.reestimate_steps < 1:
            raise ValueError(f"--reestimate-steps: expected a positive number of batches, got {reestimate_steps}")
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist
            backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
            dist.init_process_group(backend)
            if cfg.batch_size % self.world:
                raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {self.world} processes")
        apply_threads(cfg.threads)  # 0: the idle cores, shared among this launch's processes
        dev = pick_device(cfg.device)
        if dev.type == "cuda" and self.world > 1:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        self.device = dev
        self.amp = parse_amp(cfg.amp)
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only
        self.model = UNet(preset(cfg.preset, **{"image_size": cfg.size, **cfg.model})).to(dev)
        self.model = to_channels_last(self.model, cfg.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.step, self.images_seen, self.wall = 0, 0, 0.0
        self.history: list[dict] = []  # settings changed on resume: [{"step", "images_seen", "changed"}]
        self.lineage: list[dict] = []  # the run's legs (lib.training.lineage)
        self._leg_wall0 = 0.0
        self.ema = None  # the EMA model when cfg.ema_decay > 0 (set up in _run)
        self._ema_since = 0
        self.data_sha256 = None
        self.stop_requested = False  # set by SIGTERM or request_stop(): the run saves its state and returns
        self._saved_step = None
        self._t_log = None          # when the last loss line was logged (its images/s)
        self._evidence_sets = None  # (train, held-out) ImageSets of the evidence records, loaded on first use

    # -- persistence ---------------------------------------------------------------------------
    def save(self):
        """Write the run's state (weights, Adam, EMA, metadata) and its model (and EMA model) into ``cfg.out``
        (rank 0 only; on a write error, `_write_failed` saves them elsewhere)."""
        if self.rank != 0:
            return
        sd = {f"model.{k}": v for k, v in self.model.state_dict().items() if not k.endswith("num_batches_tracked")}
        ot, ometa = optimizer_tensors(self.opt)
        et = {f"ema.{k}": v for k, v in self.ema.state_dict().items()} if self.ema is not None else {}
        meta = {"step": str(self.step), "images_seen": str(self.images_seen), "wall_s": str(self.wall),
                "train_config": json.dumps(dataclasses.asdict(self.cfg)), "optimizer": json.dumps(ometa),
                "history": json.dumps(self.history), "lineage": json.dumps(self.metadata()["lineage"]),
                "ema_since_images": str(self._ema_since)}

        def write(d: Path):
            atomic_save_tensors(d / "state.safetensors", {**sd, **ot, **et}, meta)
            save_model(d / "model", self.model, self.metadata())
            if self.ema is not None:
                save_model(d / "ema" / "model", self.ema, self.metadata(ema=True))
        try:
            write(self.out)
        except OSError as e:
            self._write_failed(e, write)
        self._saved_step = self.step

    def metadata(self, ema: bool = False) -> dict:
        """The checkpoint metadata: dataset, size, position, wall time, config, history and lineage (the current
        leg's end filled in), plus the EMA's settings for ``ema=True``."""
        meta = {"dataset": self.cfg.dataset, "size": self.cfg.size, "step": self.step,
                "images_seen": self.images_seen, "wall_s": round(self.wall, 1),
                "train_config": dataclasses.asdict(self.cfg)}
        if self.history:
            meta["history"] = self.history
        lineage = [dict(leg) for leg in self.lineage]
        if lineage:
            lineage[-1].update(end_step=self.step, end_images=self.images_seen,
                               wall_s=round(self.wall - self._leg_wall0, 1))
        meta["lineage"] = lineage
        if ema:
            meta["ema"] = {"decay": self.cfg.ema_decay, "since_images": self._ema_since}
        return meta

    def _write_failed(self, err: OSError, rescue) -> None:
        """The output folder cannot be written: save the state to a temporary folder with ``rescue(dir)``
        and raise an error saying where it went and that the last checkpoint in --out is intact."""
        last = f"step {self._saved_step}" if self._saved_step is not None else "none yet"
        try:
            d = Path(tempfile.mkdtemp(prefix="lib-train-rescue-"))
            rescue(d)
            saved = (f"the state at step {self.step} was saved to {d} (copy its files into {self.out} and rerun "
                     f"the same command to resume from it)")
        except Exception as e2:  # the rescue is best effort; report why it failed too
            saved = f"the state at step {self.step} could not be saved elsewhere either ({e2})"
        raise PermissionError(f"cannot write to the output folder {self.out} at step {self.step}: {err}; the last "
                              f"checkpoint there ({last}) is intact; {saved}") from None

    def try_resume(self) -> bool:
        """Resume from ``cfg.out``/state.safetensors if it exists, after checking that the settings, the data and
        (when continuing) the lineage allow it; returns whether it resumed."""
        path = self.out / "state.safetensors"
        if not path.is_file():
            self._truncate_log(-1)  # a fresh start: entries of a run killed before its first checkpoint go
            return False
        tensors, meta = read_tensors(path)
        old = TrainConfig(**json.loads(meta["train_config"]))
        lineage = (json.loads(meta["lineage"]) if meta.get("lineage") else
                   lineage_of({"train_config": json.loads(meta["train_config"]), "step": int(meta["step"]),
                               "images_seen": int(meta["images_seen"]), "wall_s": float(meta["wall_s"])}))
        if self.continue_from is not None:
            _, cmeta = read_config(self.continue_from)
            if not (descends_from(lineage, lineage_of(cmeta))
                    and int(meta["images_seen"]) >= cmeta.get("images_seen", 0)):
                raise ValueError(f"--continue {self.continue_from}: --out {self.out} already holds the state of "
                                 f"another run (or of an earlier point of this one, at "
                                 f"{int(meta['images_seen']):,} images); choose an empty --out, or delete {path}")
            print(f"{self.out}: already continued from {self.continue_from}; resuming its state at "
                  f"{int(meta['images_seen']):,} images", flush=True)
        if old.compatible() != self.cfg.compatible():
            diff = changes(old.compatible(), self.cfg.compatible())
            raise ValueError(f"{path}: cannot resume, the run was started with different settings {diff} "
                             f"(use another --out or delete the folder)")
        step, images_seen = int(meta["step"]), int(meta["images_seen"])
        changed = changes(old.schedule_fields(), self.cfg.schedule_fields())
        if changed and not self.allow_changes:
            raise ValueError(f"{path}: cannot resume at step {step} with changed settings {changed} (old, new): "
                             f"they change the training from here on; rerun with the recorded settings, or pass "
                             f"--allow-changes to continue with the new ones (the change is recorded in the "
                             f"run's history)")
        load_state(self.model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, str(path))
        load_optimizer(self.opt, tensors, json.loads(meta["optimizer"]))
        self.step, self.images_seen, self.wall = step, images_seen, float(meta["wall_s"])
        self._saved_step = step
        self.history = json.loads(meta.get("history", "[]"))
        self.lineage = lineage
        self._leg_wall0 = self.wall - float(lineage[-1].get("wall_s", 0.0))
        if changed:
            self.history.append({"step": step, "images_seen": images_seen, "changed": changed})
        self._check_data(last_data_sha256(lineage), str(path))
        if self.cfg.ema_decay and any(k.startswith("ema.") for k in tensors):
            self._ema_since = int(meta.get("ema_since_images", 0))
            self._init_ema({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        self._truncate_log(self.step)
        return True

    def _check_data(self, recorded: str | None, where: str) -> None:
        """Refuse to go on with other training images than the run's (unless allowed, then recorded as a new leg)."""
        if recorded is None or recorded == self.data_sha256:  # None: the run predates the fingerprint
            return
        if not self.allow_changes:
            raise ValueError(f"{where}: the training images differ from the run's (data sha256 {recorded}, now "
                             f"{self.data_sha256} for {self.cfg.dataset}, {self.cfg.n_train} images); train on the "
                             f"run's images, or pass --allow-changes to go on with these (recorded in the lineage)")
        self.history.append({"step": self.step, "images_seen": self.images_seen,
                             "changed": {"data_sha256": (recorded, self.data_sha256)}})
        self.lineage.append(new_leg(self.lineage, self.step, self.images_seen, weights_sha256(self.model, 16),
                                    "kept", self.data_sha256))
        self._leg_wall0 = self.wall

    def continue_checkpoint(self, pool, stream) -> None:
        """Start a new leg from the shipped checkpoint ``self.continue_from`` (``lib.training.lineage``)."""
        stem = self.continue_from
        wpath = checkpoint_file(stem, ".safetensors")
        _, meta = read_config(stem)
        if "train_config" not in meta or "step" not in meta:
            raise ValueError(f"--continue {stem}: {checkpoint_file(stem, '.json')} has no training metadata "
                             f"(train_config, step); only checkpoints shipped from a training run can be continued")
        old = TrainConfig(**meta["train_config"])
        # the data spec may name the same images at another place (another machine's copy): the fingerprint of
        # the images decides (_check_data); the spec change itself is a recorded change
        diff = changes({k: v for k, v in old.compatible().items() if k != "dataset"}, self.cfg.compatible())
        if diff:
            raise ValueError(f"--continue {stem}: the checkpoint was trained with other settings {diff} (checkpoint, "
                             f"now); continue it with its own config (its train_config is in "
                             f"{checkpoint_file(stem, '.json')})")
        changed = changes(old.schedule_fields(), self.cfg.schedule_fields())
        if old.dataset != self.cfg.dataset:
            changed["dataset"] = (old.dataset, self.cfg.dataset)
        changed.pop("compile", None)  # how the forward runs, not what it computes
        if changed and not self.allow_changes:
            raise ValueError(f"--continue {stem}: changed settings {changed} (checkpoint, now) change the training "
                             f"from here on; use the recorded ones, or pass --allow-changes (recorded in the history)")
        tensors, _ = read_tensors(wpath)
        load_state(self.model, tensors, str(wpath))
        self.step, self.images_seen = int(meta["step"]), int(meta["images_seen"])
        self.wall = float(meta.get("wall_s", 0.0))
        self.history = list(meta.get("history", []))
        if changed:
            self.history.append({"step": self.step, "images_seen": self.images_seen, "changed": changed})
        self.lineage = lineage_of(meta)
        self._check_data(last_data_sha256(self.lineage), f"--continue {stem}")
        opath = checkpoint_file(stem, ".optim.safetensors")
        if opath.is_file():
            otensors, ometa = read_tensors(opath)
            if int(ometa.get("step", -1)) != self.step:
                raise ValueError(f"{opath}: optimizer state of step {ometa.get('step')}, weights of step {self.step}; "
                                 f"they must come from the same point (ship them together, or delete {opath.name})")
            load_optimizer(self.opt, otensors, json.loads(ometa["optimizer"]))
            how = "kept"
        else:
            k = min(self.reestimate_steps, self.step)
            reestimate_adam(self.model, self.opt, lambda i: self._loss(self.model, pool, stream, self.step - k + i), k)
            how = f"re-estimated (last {k} batches at lr 0)"
        self.lineage.append(new_leg(self.lineage, self.step, self.images_seen, weights_sha256(self.model, 16), how,
                                    self.data_sha256))
        self._leg_wall0 = self.wall
        log = checkpoint_file(stem, ".log.jsonl")
        if self.rank == 0:
            lines = log.read_text().splitlines() if log.is_file() else []
            atomic_write_bytes(self.out / "log.jsonl", "".join(line + "\n" for line in lines if line.strip()).encode())
            self._truncate_log(self.step)
            self.log({"step": self.step, "images": self.images_seen, "kind": "continue", "leg": len(self.lineage) - 1,
                      "from": str(stem), "from_sha256": self.lineage[-1]["from_sha256"], "optimizer": how,
                      "data_sha256": self.data_sha256})
        print(f"continuing {stem} at {self.images_seen:,} images (step {self.step}), leg {len(self.lineage) - 1}; "
              f"optimizer {how}", flush=True)

    def _loss(self, model, pool, stream, step: int) -> torch.Tensor:
        """The training loss of this rank's rows of global batch ``step`` (data order and noise: (seed, step))."""
        cfg = self.cfg
        per = cfg.batch_size // self.world
        lo, hi = self.rank * per, (self.rank + 1) * per
        idx = stream.indices(step)[lo:hi].numpy()
        x = torch.from_numpy(pool[idx])  # this rank's rows only, uint8 (a memmap reads just these)
        sigma, z = noise_for_step(cfg, step, (cfg.batch_size, *x.shape[1:]), self.device)
        sigma, z = sigma[lo:hi], z[lo:hi]
        x = to_channels_last(x.to(self.device, non_blocking=True).float().div_(255), cfg.channels_last)
        y = x + sigma.to(self.device).view(-1, 1, 1, 1) * z.to(self.device)
        with autocast(self.device, self.amp):
            out = model(y)
        return (out.float() - x).pow(2).sum(dim=(1, 2, 3)).mean()

    def _init_ema(self, tensors: dict | None = None) -> None:
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        if tensors is not None:
            load_state(self.ema, tensors, str(self.out / "state.safetensors") + " (ema)")

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = self.cfg.ema_decay
        ep, mp = list(self.ema.parameters()), [p.detach() for p in self.model.parameters()]
        torch._foreach_lerp_(ep, mp, 1.0 - d)
        for b, mb in zip(self.ema.buffers(), self.model.buffers()):
            b.copy_(mb)

    def _truncate_log(self, last_step: int):
        """Keep the log records up to ``last_step`` (those of the checkpoint resumed from); drop a torn last
        line (the process was killed while writing it). A damaged line before the last is an error."""
        log = self.out / "log.jsonl"
        if self.rank != 0 or not log.is_file():
            return
        lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
        keep = []
        for i, ln in enumerate(lines):
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    print(f"{log}: dropped a torn last line (line {i + 1}): {ln[:60]!r}", flush=True)
                    break
                raise ValueError(f"{log}: line {i + 1} is not JSON ({ln[:60]!r}); fix or delete that line") from None
            if rec.get("step", 0) <= last_step:
                keep.append(ln)
        atomic_write_bytes(log, ("\n".join(keep) + "\n" if keep else "").encode())

    def log(self, rec: dict):
        """Append ``rec`` as one JSON line to ``cfg.out``/log.jsonl (rank 0 only)."""
        if self.rank != 0:
            return
        try:
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        except OSError as e:
            self._write_failed(e, self._rescue_state)

    def _rescue_state(self, d: Path):
        out, self.out = self.out, d
        try:
            self.save()
        finally:
            self.out = out

    # -- the loop --------------------------------------------------------------------------------
    def run(self, progress: bool = True):
        """Train to ``total_images`` (resuming from --out); rank 0 holds the folder's lock throughout."""
        if self.rank != 0:
            return self._run(progress)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PermissionError(f"--out {self.out}: cannot create the output folder: {e}") from None
        with exclusive_lock(self.out, "training run"):
            return self._run(progress)

    def _run(self, progress: bool):
        cfg = self.cfg
        pool = cached_images(cfg, cfg.n_train, "train")  # uint8 ndarray, or a read-only np.memmap
        val = torch.from_numpy(np.array(cached_images(cfg, cfg.n_val, "test"))).float() / 255
        if pool.shape[1] != self.model.config.in_channels:
            raise ValueError(f"dataset {cfg.dataset}: {pool.shape[1]} channels, "
                             f"model expects {self.model.config.in_channels}")
        stream = BatchStream(len(pool), cfg.batch_size, cfg.seed)
        self._start_leg(pool, stream)
        model = self._wrapped()
        if self.step == 0 and self.rank == 0:
            self.log({"step": 0, "images": 0, "kind": "eval", "psnr": evaluate(self.model, val, self.device, self.amp)})
        old_handler = signal.signal(signal.SIGTERM, self._on_term) if self._main_thread() else None
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.total_steps, initial=self.step, disable=not progress or self.rank != 0,
                   desc=f"train {cfg.out}", dynamic_ncols=True)
        model.train()
        t_last, window = time.time(), [0.0, 0]  # loss sum and steps since the last loss line
        while self.step < cfg.total_steps and not self.stop_requested:
            loss = self._train_step(model, pool, stream)
            window[0] += loss
            window[1] += 1
            bar.update(1)
            now = time.time()
            self.wall += now - t_last
            self._after_step(window, now, val)
            t_last = time.time()
        if self.stop_requested and self.step % cfg.ckpt_every:
            self.save()
        bar.close()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()
            dist.destroy_process_group()
        return self.model

    def _start_leg(self, pool, stream) -> None:
        """Resume the run in ``cfg.out``, or continue a shipped checkpoint, or start from scratch; set up the EMA,
        record the config, and save a continued leg's starting state."""
        cfg = self.cfg
        self.data_sha256 = data_fingerprint(pool)
        if not self.try_resume():
            if self.continue_from is not None:
                self.continue_checkpoint(pool, stream)
            else:
                self.lineage = [new_leg([], 0, 0, None, "fresh (from scratch)", self.data_sha256)]
        if cfg.ema_decay and self.ema is None:  # from now on (a run that turns it on later: since these images)
            self._ema_since = self.images_seen
            self._init_ema()
        if self.rank == 0:
            atomic_write_json(self.out / "train_config.json", dataclasses.asdict(cfg))
        if self.continue_from is not None and self._saved_step is None:
            self.save()  # the new leg's starting state: rerunning the same command resumes from here

    def _wrapped(self):
        """The model the steps run: DDP-wrapped across processes, compiled when asked."""
        model = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            model = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.cfg.compile:
            model = torch.compile(model)
        return model

    def _train_step(self, model, pool, stream) -> float:
        """One optimizer step (lr from the schedule, the EMA after it); its loss. A non-finite loss stops the
        run with the last checkpoint kept."""
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.cfg, self.step)
        loss = self._loss(model, pool, stream, self.step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.step}; "
                                     f"last checkpoint kept in {self.out}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.ema is not None:
            self._update_ema()
        self.step += 1
        self.images_seen += self.cfg.batch_size
        return loss.item()

    def _after_step(self, window: list, now: float, val) -> None:
        """What is due after a step: the loss line (``window``: loss sum and steps since the last one, reset
        here), snapshots, the evidence record, and the evaluation with a checkpoint."""
        cfg = self.cfg
        if self.step % cfg.log_every == 0:
            loss_sum, n = window
            rate = (None if self._t_log is None
                    else round(n * cfg.batch_size / max(1e-9, now - self._t_log), 1))
            self.log({"step": self.step, "images": self.images_seen, "loss": round(loss_sum / n, 4),
                      "lr": lr_at(cfg, self.step), "wall_s": round(self.wall, 1), "img_per_s": rate})
            window[:] = [0.0, 0]
            self._t_log = time.time()
        if snapshot_due(cfg, self.images_seen) and self.rank == 0:
            save_model(self.out / "snapshots" / f"img{self.images_seen:09d}", self.model, self.metadata())
            if self.ema is not None:
                save_model(self.out / "ema" / "snapshots" / f"img{self.images_seen:09d}", self.ema,
                           self.metadata(ema=True))
        if cfg.evidence_every_images and self.rank == 0 and (
                self.images_seen % cfg.evidence_every_images < cfg.batch_size or self.step == cfg.total_steps):
            self.log_evidence()
        if self.step % cfg.ckpt_every == 0 or self.step == cfg.total_steps:
            if self.rank == 0:
                self.log({"step": self.step, "images": self.images_seen, "kind": "eval",
                          "psnr": evaluate(self.model, val, self.device, self.amp)})
            self.save()

    def log_evidence(self):
        """Sparsity, kurtosis, clustering and probe numbers on a fixed held-out set (lib.training.evidence)."""
        if self._evidence_sets is None:
            self._evidence_sets = evidence_sets(self.cfg.dataset, self.cfg.size, self.cfg.seed, self.cfg.n_evidence)
        was = self.model.training
        self.model.eval()
        train, data = self._evidence_sets
        ev = model_evidence(self.model, data, seed=self.cfg.seed, train=train)
        self.model.train(was)
        self.log({"step": self.step, "images": self.images_seen, "kind": "evidence", **ev})

    def request_stop(self) -> None:
        """Stop after the current step: the state is saved and `run` returns (rerun the command to resume)."""
        self.stop_requested = True

    def _on_term(self, *_):
        self.request_stop()

    @staticmethod
    def _main_thread():
        return threading.current_thread() is threading.main_thread()
