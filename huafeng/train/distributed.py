"""Data-parallel training across processes: ``torchrun --nproc_per_node N -m huafeng.train WHAT ...``.

A trainer calls :func:`session` once; under torchrun (``WORLD_SIZE`` > 1 in the environment) it joins
the process group (gloo on CPU, nccl on GPU, one GPU per local rank), otherwise it is a no-op and
the trainer runs as a single process. The recipe every trainer follows, so that N processes train
exactly like one process with the same global batch:

- every rank draws the *global* batch from the same seeded RNG and keeps its shard (:meth:`Dist.shard`);
- gradients are averaged over ranks, by DistributedDataParallel (:meth:`Dist.wrap`) or, where a
  model runs several times per step (GANs), by hand (:meth:`Dist.average_gradients`);
- a loss normalised by a batch statistic uses its average over ranks (:meth:`Dist.average`);
- logged numbers are averaged over ranks (:meth:`Dist.mean`); stop decisions are shared (:meth:`Dist.any`);
- rank 0 alone writes checkpoints, logs and curves; every rank waits for it (:meth:`Dist.barrier`),
  and every rank resumes from the same checkpoint (so ``--out`` must be on a filesystem all nodes see).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
import torch.distributed as dist

from ..errors import SettingsError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and reports progress."""
        return self.rank == 0

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's equal share of a global batch (B, ...) -> (B / world, ...), moved to the device."""
        if x.shape[0] % self.world:
            raise SettingsError(f"the batch ({x.shape[0]}) must be a multiple of the number of processes "
                                f"({self.world}).")
        n = x.shape[0] // self.world
        return x[self.rank * n:(self.rank + 1) * n].to(self.device)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel around ``module`` (gradients averaged in backward); itself when alone."""
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average ``.grad`` over ranks in one flat all-reduce (for models run several times per step)."""
        if self.world == 1:
            return
        grads: list[torch.Tensor] = []
        for p in params:
            if not p.requires_grad:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        i = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[i:i + n].view_as(g))
            i += n

    def average(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of a (detached) tensor over ranks.

        For a loss relative to a batch statistic (``‖F(y) − F(x)‖² / ‖F(x)‖²``): divide each shard's
        numerator by the *average* over ranks of the shard's denominator. DDP's average of the ranks'
        gradients is then exactly the gradient of the global-batch loss."""
        if self.world == 1:
            return x
        x = x.detach().clone()
        dist.all_reduce(x)
        return x / self.world

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Numbers averaged over ranks (for logs: equal shards make this the global-batch value)."""
        if self.world == 1 or not values:
            return values
        t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: v / self.world for k, v in zip(values, t.tolist())}

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is true on any rank (a time budget must stop every rank at the same step)."""
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def from_env() -> Dist:
    """The process group torchrun describes in the environment (joined here), or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        backend, device = "nccl", torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        backend, device = "gloo", torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Dist(rank=rank, world=world, local_rank=local, device=device)


@contextlib.contextmanager
def session() -> Iterator[Dist]:
    """:func:`from_env` for the length of a training run; leaves the group as it found it."""
    joined = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    d = from_env()
    try:
        yield d
        if joined and dist.is_initialized():
            dist.barrier()  # every rank done with its collectives before any tears the group down
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()


def launch(train_argv: list[str], nproc: int) -> int:
    """Run ``huafeng train ...`` (``train_argv``: what follows ``train``) as ``nproc`` processes under
    torchrun on this machine; returns torchrun's exit code. ``--nproc`` is dropped from the arguments."""
    import subprocess
    import sys

    if nproc < 1:
        raise SettingsError(f"--nproc must be at least 1, got {nproc}.")
    argv, skip = [], False
    for a in train_argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            argv.append(a)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))  # share the cores
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "huafeng.train", *argv]
    return subprocess.run(cmd, env=env).returncode
