"""Unpaired photo → painting-domain translation: CycleGAN (Zhu et al. 2017), ``huafeng train gan``.

Two generators, G: A → B and F: B → A, and two 70×70 PatchGAN discriminators, D_B (is it a
painting?) and D_A (is it a photo?). The generators minimise

    L_G = L_lsgan(D_B(G(a)), 1) + L_lsgan(D_A(F(b)), 1)
          + λ (‖F(G(a)) − a‖₁ + ‖G(F(b)) − b‖₁)            cycle consistency, λ = 10
          + 0.5 λ (‖G(b) − b‖₁ + ‖F(a) − a‖₁)              identity (keeps colours)

and each discriminator minimises ½[L_lsgan(D(real), 1) + L_lsgan(D(fake), 0)], its fakes drawn
from a history pool of the last 50 generated images (Shrivastava et al. 2017). Adam(2e-4, β1 0.5),
constant for the first half of the budget, then linearly down to 0 (the paper: 100 + 100 epochs).
As in the paper the L1 terms are taken on pixels in [-1, 1].

Departures, for a CPU: slim networks (see ``huafeng.methods.gan``), 128 px crops by default, and a
time budget in place of epochs; the decay follows whichever budget (minutes or steps) ends first.
Domain B may be a handful of large paintings: every step samples fresh random crops from them, at
random scale and flip. The history pools are not checkpointed (they refill in 50 steps).

Under torchrun each process takes its shard of the same global batch (``--batch`` a multiple of the
processes); the generators run several times per step, so gradients are averaged by hand
(``Dist.average_gradients``), which is what DDP computes. Each process keeps its own history pool,
so N processes follow the 1-process curve exactly until the pools fill, then statistically.
"""
from __future__ import annotations

import glob
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import controls as ctl
from ..errors import SettingsError
from ..image import IMAGE_EXTENSIONS, resize_long_side
from ..losses import cycle_loss, identity_loss, lsgan_loss
from ..methods.gan import Generator, GeneratorConfig, PatchDiscriminator, generator_metadata
from ..weights import save_file
from . import distributed
from .common import Clock, ImageBank, list_images, load_checkpoint, plot_curves, save_checkpoint, write_json

Tensor = torch.Tensor
CURVES = ["G", "D", "cycle", "identity"]


@dataclass(frozen=True)
class GanTrainSettings:
    a: tuple[str, ...]              # domain A (photos): folders, image files or glob patterns
    b: tuple[str, ...]              # domain B (paintings): the same
    out: str = "runs/gan"
    minutes: float = 45.0
    steps: int = 100_000
    batch: int = 1
    crop: int = 128
    a_side: int = 384               # photos are held at this long side, then cropped at 50–100% of the short side
    b_side: int = 512               # paintings likewise, cropped at 25–80%: many different crops from few paintings
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5    # relative to lambda_cycle, as in the paper
    pool: int = 50
    channels: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 5
    residual: bool = False          # identity-start generators (see huafeng.methods.gan: off, it stalled)
    d_channels: int = 16
    checkpoint_every: int = 100
    sample_every: int = 250
    samples: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.a or not self.b:
            raise SettingsError("both domains are needed: --a PHOTOS and --b PAINTINGS (folders, files or globs).")
        if self.minutes is None or self.minutes <= 0:
            raise SettingsError(f"minutes must be positive, got {self.minutes}.")
        if self.batch < 1 or self.crop < 32 or self.steps < 1 or self.pool < 0:
            raise SettingsError("batch must be ≥ 1, crop ≥ 32 px, steps ≥ 1 and pool ≥ 0.")
        if self.crop % 4:
            raise SettingsError(f"crop must be a multiple of 4 pixels, got {self.crop}.")


def domain_files(specs: tuple[str, ...], side: str) -> list[Path]:
    """Image files named by folders (searched recursively), files, or glob patterns, deduplicated."""
    files: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            try:
                files += list_images(p)
            except SettingsError:
                pass
        elif p.is_file():
            files.append(p)
        else:
            files += [Path(f) for f in sorted(glob.glob(str(p), recursive=True)) if Path(f).is_file()]
    files = [f for f in dict.fromkeys(files) if f.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise SettingsError(f"domain {side} ({', '.join(specs)}) holds no images; give a folder of images, "
                            f"image files or a glob for --{side.lower()}.")
    return files


class HistoryPool:
    """The image buffer of Shrivastava et al. (2017): the discriminator sees older fakes too.

    Until full it returns what it is given (and keeps it); then, per image, with probability ½ it
    returns a stored fake and stores the new one in its place.
    """

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i])
                self.images[i] = img
            else:
                out.append(img)
        return torch.stack(out)


def _lr(s: GanTrainSettings, spent: float, step: int) -> float:
    """Constant for the first half of the budget, then linearly to 0 at its end."""
    frac = max(spent / (s.minutes * 60), step / s.steps)
    return s.lr * min(1.0, max(0.0, 2.0 * (1.0 - frac)))


def _pm(x: Tensor) -> Tensor:
    return x * 2 - 1  # pixels to [-1, 1], where the paper takes its L1 terms


class _Nets:
    """The four networks, their two optimisers, and their state as one flat dict."""

    def __init__(self, s: GanTrainSettings) -> None:
        cfg = GeneratorConfig(channels=tuple(s.channels), res_blocks=s.res_blocks, residual=s.residual)
        self.cfg = cfg
        self.G_AB, self.G_BA = Generator(cfg), Generator(cfg)
        self.D_A, self.D_B = PatchDiscriminator(s.d_channels), PatchDiscriminator(s.d_channels)
        betas = (s.beta1, 0.999)
        self.opt = {"G": torch.optim.Adam([*self.G_AB.parameters(), *self.G_BA.parameters()], s.lr, betas=betas),
                    "D": torch.optim.Adam([*self.D_A.parameters(), *self.D_B.parameters()], s.lr, betas=betas)}

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}

    def state(self) -> dict[str, Tensor]:
        return {f"{n}.{k}": v for n, m in self.modules().items() for k, v in m.state_dict().items()}

    def load(self, state: dict[str, Tensor]) -> None:
        for n, m in self.modules().items():
            m.load_state_dict({k[len(n) + 1:]: v for k, v in state.items() if k.startswith(n + ".")})


def train_step(nets: _Nets, real_a: Tensor, real_b: Tensor, pools: tuple[HistoryPool, HistoryPool],
               s: GanTrainSettings, group: distributed.Dist | None = None) -> dict[str, float]:
    """One CycleGAN step: the generators (discriminators frozen), then the discriminators.

    With ``group`` (data-parallel), each optimiser steps on gradients averaged over the processes."""
    group = group or distributed.Dist()
    lam, lam_idt = s.lambda_cycle, s.lambda_cycle * s.lambda_identity
    fake_b, fake_a = nets.G_AB(real_a), nets.G_BA(real_b)  # (B,3,H,W) each
    rec_a, rec_b = nets.G_BA(fake_b), nets.G_AB(fake_a)
    for d in (nets.D_A, nets.D_B):
        d.requires_grad_(False)
    adv = lsgan_loss(nets.D_B(fake_b), True) + lsgan_loss(nets.D_A(fake_a), True)
    cyc = cycle_loss(_pm(rec_a), _pm(real_a)) + cycle_loss(_pm(rec_b), _pm(real_b))
    idt = torch.zeros((), device=real_a.device)
    if lam_idt > 0:
        idt = identity_loss(_pm(nets.G_AB(real_b)), _pm(real_b)) + identity_loss(_pm(nets.G_BA(real_a)), _pm(real_a))
    loss_g = adv + lam * cyc + lam_idt * idt
    nets.opt["G"].zero_grad(set_to_none=True)
    loss_g.backward()
    group.average_gradients([*nets.G_AB.parameters(), *nets.G_BA.parameters()])
    nets.opt["G"].step()
    for d in (nets.D_A, nets.D_B):
        d.requires_grad_(True)
    old_b, old_a = pools[1].query(fake_b), pools[0].query(fake_a)
    loss_d_b = 0.5 * (lsgan_loss(nets.D_B(real_b), True) + lsgan_loss(nets.D_B(old_b), False))
    loss_d_a = 0.5 * (lsgan_loss(nets.D_A(real_a), True) + lsgan_loss(nets.D_A(old_a), False))
    nets.opt["D"].zero_grad(set_to_none=True)
    (loss_d_a + loss_d_b).backward()
    group.average_gradients([*nets.D_A.parameters(), *nets.D_B.parameters()])
    nets.opt["D"].step()
    return {"G": adv.item(), "D": (loss_d_a + loss_d_b).item(), "cycle": cyc.item(), "identity": idt.item(),
            "total": loss_g.item()}


@torch.no_grad()
def sample_sheet(g_ab: Generator, g_ba: Generator, photos: list[Tensor], names: list[str], cell: int = 160):
    """A PIL contact sheet: one row per photo: photo | A→B | A→B→A."""
    from ..sheet import contact_sheet

    grid = []
    for x in photos:
        y = g_ab(x)
        grid.append([x, y, g_ba(y)])
    return contact_sheet(grid, row_labels=names, col_labels=["photo (A)", "A->B", "A->B->A"], cell=cell)


def train_gan(s: GanTrainSettings, progress: ctl.ProgressFn | None = None) -> dict:
    """Train (or resume) a CycleGAN. Writes into ``s.out``: ``checkpoint.safetensors`` (all four
    networks and both optimisers), ``a2b.safetensors`` (use with ``--method gan --model FILE``),
    ``b2a.safetensors``, ``log.json``, ``curves.png`` and ``samples/step_NNNNNN.png``.
    Under torchrun rank 0 alone writes and reports."""
    with distributed.session() as group:
        return _train(s, group, progress if group.main else None)


def _train(s: GanTrainSettings, group: distributed.Dist, progress: ctl.ProgressFn | None) -> dict:
    files_a, files_b = domain_files(s.a, "A"), domain_files(s.b, "B")
    out = Path(s.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    bank_a, bank_b = ImageBank(files_a, s.a_side), ImageBank(files_b, s.b_side)
    rng = random.Random(s.seed)
    torch.manual_seed(s.seed)
    nets = _Nets(s)  # the same seed: the same start on every process
    for m in nets.modules().values():
        m.to(group.device)
    step, spent, log = 0, 0.0, []
    ckpt = out / "checkpoint.safetensors"
    if ckpt.exists():
        state, step, _, extra = load_checkpoint(ckpt, nets.opt)
        try:
            nets.load(state)
        except RuntimeError:
            raise SettingsError(f"{ckpt} was trained with other network sizes; use another --out.") from None
        spent, log = extra.get("spent", 0.0), extra.get("log", [])
        rng.seed(s.seed + step)
        torch.manual_seed(s.seed + step)
    clock = Clock(spent)
    # The pools draw from their own RNG, so every process draws the same batches from ``rng``.
    pool_rng = random.Random(f"{s.seed}-{step}-{group.rank}")
    pools = (HistoryPool(s.pool, pool_rng), HistoryPool(s.pool, pool_rng))
    picks = [round(i * (len(bank_a) - 1) / max(1, s.samples - 1)) for i in range(min(s.samples, len(bank_a)))]
    samples = [resize_long_side(bank_a.images[i][None].float() / 255, s.crop * 3 // 2) for i in picks]
    sample_names = [Path(bank_a.names[i]).stem[:14] for i in picks]
    info = {"n_a": len(bank_a), "n_b": len(bank_b), "a": [str(f) for f in files_a[:20]],
            "b": [Path(f).name for f in files_b]}

    def save_models() -> None:
        last = log[-1] if log else {}
        meta = dict(steps=step, minutes=round(clock.spent / 60, 1), crop=s.crop, train_side=s.a_side,
                    losses={k: last.get(k) for k in CURVES}, domain_b=info["b"])
        for g, name, direction in ((nets.G_AB, "a2b", "A→B"), (nets.G_BA, "b2a", "B→A")):
            save_file(g.state_dict(), out / f"{name}.safetensors", generator_metadata(nets.cfg, direction=direction, **meta))

    def checkpoint() -> None:
        if not group.main:
            return group.barrier()  # until rank 0 has written it
        save_checkpoint(ckpt, nets.state(), nets.opt, step, asdict(s), {"spent": clock.spent, "log": log})
        save_models()
        write_json(out / "log.json", {"settings": asdict(s), "data": info, "log": log})
        if log:
            plot_curves(log, out / "curves.png", CURVES, title="CycleGAN: training losses")
        group.barrier()

    def sample() -> None:
        if not group.main:
            return
        sheet = out / "samples" / f"step_{step:06d}.png"
        sample_sheet(nets.G_AB, nets.G_BA, [x.to(group.device) for x in samples], sample_names).save(sheet)
        shutil.copyfile(sheet, out / "samples.png")

    if step == 0:
        sample()  # the untrained generators, for comparison
    start_step, start_time = step, clock.spent
    while step < s.steps and (now := group.mean({"t": clock.spent})["t"]) < s.minutes * 60:  # one clock for all
        lr = _lr(s, now, step)
        for opt in nets.opt.values():
            for g in opt.param_groups:
                g["lr"] = lr
        real_a = group.shard(bank_a.crops(s.batch, s.crop, rng))  # the global batch, drawn alike everywhere
        real_b = group.shard(bank_b.crops(s.batch, s.crop, rng, scale=(0.25, 0.8)))
        row = group.mean(train_step(nets, real_a, real_b, pools, s, group))
        step += 1
        log.append({"step": step, **{k: round(v, 5) for k, v in row.items()}, "lr": lr, "time": round(clock.spent, 1)})
        if progress:
            per_step = (clock.spent - start_time) / max(1, step - start_step)
            left = min(s.steps - step, (s.minutes * 60 - clock.spent) / max(per_step, 1e-6))
            progress(ctl.Progress(f"cycle {row['cycle']:.3f} G {row['G']:.3f} D {row['D']:.3f}",
                                  step, step + max(0, int(left)), row["total"]))
        if step % s.checkpoint_every == 0:
            checkpoint()
        if step % s.sample_every == 0:
            sample()
    checkpoint()
    if step % s.sample_every:
        sample()
    return {"steps": step, "minutes": round(clock.spent / 60, 1), "out": str(out),
            "weights": str(out / "a2b.safetensors"), "samples": str(out / "samples.png"),
            "seconds_per_step": round((clock.spent - start_time) / max(1, step - start_step), 3),
            "last": log[-1] if log else {}}
