"""Train a per-style network on one painting (Johnson et al. 2016): ``huafeng train style PAINTING``.

Perceptual loss on the frozen Lite0 features (the optimisation method's layers):

    L = α Σ_l ‖F_l(y) − F_l(x)‖²/‖F_l(x)‖²  +  β Σ_l ‖G_l(y) − G_l(s)‖²/‖G_l(s)‖² / n_l  +  γ TV(y),   y = T(x)

with x random crops of photos and s the painting. Settings that worked in a trial here: content
weight ~30 against a style weight of 1e3 (with 1 the content never came back), 256 px crops, a
cosine learning-rate decay over the last 30% of the run. The run is resumable and time-boxed.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import controls as ctl
from ..errors import SettingsError
from ..features import FeatureExtractor
from ..image import load_image, resize_long_side
from ..losses import content_loss, gram_matrix, style_loss, total_variation
from ..methods.fast import NetConfig, TransformerNet, net_metadata
from ..methods.optimize import LAYERS
from ..weights import save_file
from .common import Clock, ImageBank, list_images, load_checkpoint, plot_curves, save_checkpoint, write_json


@dataclass(frozen=True)
class StyleTrainSettings:
    painting: str
    content_dir: str
    out: str = "runs/style"
    name: str = ""                  # the network's name (default: the painting's file stem)
    minutes: float = 15.0
    steps: int = 100_000
    batch: int = 2
    crop: int = 256
    lr: float = 1e-3
    style_weight: float = 1e3
    content_weight: float = 30.0
    tv_weight: float = 10.0
    style_size: int = 384           # the painting's long side for its Gram targets (sets the brush scale)
    channels: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 3
    checkpoint_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.minutes is not None and self.minutes <= 0:
            raise SettingsError(f"minutes must be positive, got {self.minutes}.")
        if self.batch < 1 or self.crop < 32 or self.steps < 1:
            raise SettingsError("batch must be ≥ 1, crop ≥ 32 px and steps ≥ 1.")


def _lr(s: StyleTrainSettings, spent: float, step: int) -> float:
    """Constant, then cosine decay over the last 30% of the time (or step) budget."""
    frac = max(spent / (s.minutes * 60) if s.minutes else 0.0, step / s.steps)
    return s.lr if frac < 0.7 else s.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (frac - 0.7) / 0.3)))


def train_style(s: StyleTrainSettings, progress: ctl.ProgressFn | None = None) -> dict:
    """Train (or resume) one per-style network. Writes into ``s.out``: ``checkpoint.safetensors``,
    ``NAME.safetensors`` (use with ``--method fast --style FILE``), ``log.json``, ``curves.png``."""
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    name = s.name or Path(s.painting).stem
    painting = load_image(s.painting)  # raises a one-line ImageError for an unreadable painting
    photos = ImageBank(list_images(s.content_dir), 512)
    rng = random.Random(s.seed)
    torch.manual_seed(s.seed)
    layers = LAYERS["lite0"]
    fe = FeatureExtractor("lite0", layers["style"] + layers["content"])
    with torch.no_grad():
        sf = fe(resize_long_side(painting, s.style_size), layers["style"])
        targets = {n: gram_matrix(sf[n]) for n in layers["style"]}
    cfg = NetConfig(channels=tuple(s.channels), res_blocks=s.res_blocks)
    net = TransformerNet(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    step, spent, log = 0, 0.0, []
    ckpt = out / "checkpoint.safetensors"
    if ckpt.exists():
        model, step, _, extra = load_checkpoint(ckpt, opt)
        net.load_state_dict(model)
        spent, log = extra.get("spent", 0.0), extra.get("log", [])
        rng.seed(s.seed + step)
    clock = Clock(spent)

    def checkpoint() -> None:
        save_checkpoint(ckpt, net.state_dict(), opt, step, asdict(s), {"spent": clock.spent, "log": log})
        last = log[-1] if log else {}
        save_file(net.state_dict(), out / f"{name}.safetensors",
                  net_metadata(cfg, painting=Path(s.painting).name, steps=step, minutes=round(clock.spent / 60, 1),
                               losses={k: last.get(k) for k in ("content", "style", "tv", "total")}))
        write_json(out / "log.json", {"settings": asdict(s), "log": log})
        plot_curves(log, out / "curves.png", ["content", "style", "tv", "total"], title=f"{name}: training losses")

    while step < s.steps and clock.spent < s.minutes * 60:
        for g in opt.param_groups:
            g["lr"] = _lr(s, clock.spent, step)
        x = photos.crops(s.batch, s.crop, rng)
        y = net(x)
        with torch.no_grad():
            fx = fe(x, layers["content"])
        fy = fe(y)
        lc = sum(content_loss(fy[n], fx[n], normalize=True) for n in layers["content"])
        ls = sum(style_loss(gram_matrix(fy[n]), targets[n].expand(y.shape[0], -1, -1), normalize=True)
                 for n in layers["style"]) / len(layers["style"])
        tv = total_variation(y)
        loss = s.content_weight * lc + s.style_weight * ls + s.tv_weight * tv
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        log.append({"step": step, "content": lc.item(), "style": ls.item(), "tv": tv.item(), "total": loss.item(),
                    "time": round(clock.spent, 1)})
        if progress:
            progress(ctl.Progress(f"train {name}", step, s.steps, loss.item()))
        if step % s.checkpoint_every == 0:
            checkpoint()
    checkpoint()
    return {"name": name, "steps": step, "minutes": round(clock.spent / 60, 1), "out": str(out),
            "weights": str(out / f"{name}.safetensors"), "last": log[-1] if log else {}}
