"""What every trainer shares: image folders with augmentation, safetensors checkpoints, logs, curves.

Checkpoints carry the model, the optimizer state, the step and the run's config, in one
safetensors file written atomically, so a run killed at any moment (even ``kill -9``) resumes from
its last checkpoint. No pickle anywhere.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Mapping, Sequence, Union

import torch
import torch.nn.functional as F

from ..atomic import atomic_open, atomic_path
from ..errors import HuafengError, SettingsError
from ..image import IMAGE_EXTENSIONS, read_image, resize_long_side
from ..weights import load_file, save_file

Tensor = torch.Tensor


# ------------------------------------------------------------------------------------------ data
def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted (hidden files skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise SettingsError(f"{root} is not a folder of images.")
    it = root.rglob("*") if recursive else root.glob("*")
    files = sorted(p for p in it if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise SettingsError(f"{root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return files


def split_photos(folder: str | os.PathLike, n_eval: int) -> tuple[list[Path], list[Path]]:
    """(held out, for training): the folder's photos in a fixed shuffle (seed 1234), the first ``n_eval``
    held out. Every trainer and benchmark uses this one split, so "held out" means the same photos."""
    photos = list_images(folder)
    random.Random(1234).shuffle(photos)
    return photos[:n_eval], photos[n_eval:]


class ImageBank:
    """Images held in memory as uint8 (long side ``max_side``), sampled as augmented random crops.

    Unreadable files are skipped and counted in ``skipped``.
    """

    def __init__(self, files: Sequence[Path], max_side: int = 512) -> None:
        self.images: list[Tensor] = []
        self.names: list[str] = []
        self.skipped: list[str] = []
        for f in files:
            try:
                rgb, _ = read_image(f)
            except HuafengError:
                self.skipped.append(str(f))
                continue
            if max(rgb.shape[-2:]) > max_side:
                rgb = resize_long_side(rgb, max_side)
            self.images.append((rgb[0] * 255).round().to(torch.uint8))
            self.names.append(Path(f).name)
        if not self.images:
            raise SettingsError("no readable images to train on.")

    def __len__(self) -> int:
        return len(self.images)

    def crops(self, n: int, size: int, rng: random.Random, *, scale: tuple[float, float] = (0.5, 1.0),
              jitter: float = 0.0) -> Tensor:
        """``n`` random crops (n,3,size,size) in [0,1]: random scale, position and flip; optional colour jitter."""
        out = []
        for _ in range(n):
            img = self.images[rng.randrange(len(self.images))].float() / 255
            h, w = img.shape[-2:]
            s = rng.uniform(*scale) * min(h, w)   # the crop's side in source pixels
            s = max(int(s), min(size, h, w) // 2, 8)
            s = min(s, h, w)
            y, x = rng.randrange(h - s + 1), rng.randrange(w - s + 1)
            crop = F.interpolate(img[None, :, y:y + s, x:x + s], size=(size, size), mode="bilinear",
                                 align_corners=False, antialias=s > size)[0]
            if rng.random() < 0.5:
                crop = crop.flip(-1)
            if jitter:
                crop = _jitter(crop, jitter, rng)
            out.append(crop.clamp(0, 1))
        return torch.stack(out)


def _jitter(img: Tensor, amount: float, rng: random.Random) -> Tensor:
    """Brightness, contrast and saturation jitter by up to ``amount`` (relative)."""
    b = 1 + rng.uniform(-amount, amount)
    c = 1 + rng.uniform(-amount, amount)
    s = 1 + rng.uniform(-amount, amount)
    img = img * b
    m = img.mean()
    img = (img - m) * c + m
    grey = img.mean(0, keepdim=True)
    return (img - grey) * s + grey


# ----------------------------------------------------------------------------------- checkpoints
Optimizers = Union[torch.optim.Optimizer, Mapping[str, torch.optim.Optimizer], None]


def _optim_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], list]:
    sd = optimizer.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for name, v in st.items():
            t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
            tensors[f"{prefix}.{pid}.{name}"] = t.reshape(-1) if t.dim() == 0 else t
    return tensors, sd["param_groups"]


def _restore_optim(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], prefix: str, groups: list) -> None:
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith(prefix + "."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v.reshape(()) if name == "step" else v
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(path: str | os.PathLike, model: dict[str, Tensor], optimizer: Optimizers,
                    step: int, config: dict, extra: dict | None = None) -> None:
    """Model + optimizer state + step + config in one safetensors file, written atomically.

    ``optimizer`` is one optimizer, or a dict of named ones (a GAN's ``{"G": ..., "D": ...}``),
    stored under ``optim-NAME.*`` and restored by :func:`load_checkpoint` given the same names.
    """
    tensors = {f"model.{k}": v for k, v in model.items()}
    groups: list | dict = []
    if isinstance(optimizer, Mapping):
        groups = {}
        for name, opt in optimizer.items():
            t, groups[name] = _optim_tensors(f"optim-{name}", opt)
            tensors.update(t)
    elif optimizer is not None:
        t, groups = _optim_tensors("optim", optimizer)
        tensors.update(t)
    meta = {"format": "huafeng-checkpoint-1", "step": str(step), "config": json.dumps(config),
            "param_groups": json.dumps(groups), "extra": json.dumps(extra or {})}
    save_file(tensors, path, meta)


def load_checkpoint(path: str | os.PathLike, optimizer: Optimizers = None
                    ) -> tuple[dict[str, Tensor], int, dict, dict]:
    """Read a checkpoint: ``(model_state, step, config, extra)``; restores ``optimizer`` (one, or a
    dict of named ones as saved) in place if given."""
    tensors, meta = load_file(path, dtype=None)
    if meta.get("format") != "huafeng-checkpoint-1":
        raise SettingsError(f"{Path(path).name} is not a huafeng training checkpoint.")
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    groups = json.loads(meta["param_groups"])
    if isinstance(optimizer, Mapping):
        if not isinstance(groups, dict) or set(groups) != set(optimizer):
            raise SettingsError(f"{Path(path).name} holds other optimizers than {', '.join(optimizer)}.")
        for name, opt in optimizer.items():
            _restore_optim(opt, tensors, f"optim-{name}", groups[name])
    elif optimizer is not None:
        _restore_optim(optimizer, tensors, "optim", groups)
    return model, int(meta["step"]), json.loads(meta["config"]), json.loads(meta.get("extra", "{}"))


# ------------------------------------------------------------------------------------ logs/plots
def write_json(path: str | os.PathLike, obj) -> None:
    """Atomic JSON write."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=1)


def plot_curves(log: list[dict], path: str | os.PathLike, keys: Sequence[str], title: str = "",
                smooth: int = 20) -> None:
    """A loss-curve PNG: each key against step (raw, faint; moving average, solid), log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key in keys:
        pts = [(r["step"], r[key]) for r in log if key in r and r[key] is not None and math.isfinite(r[key])]
        if not pts:
            continue
        xs, ys = zip(*pts)
        line, = ax.plot(xs, ys, alpha=0.25, lw=0.8)
        k = max(1, min(smooth, len(ys) // 5))
        avg = [sum(ys[max(0, i - k + 1):i + 1]) / len(ys[max(0, i - k + 1):i + 1]) for i in range(len(ys))]
        ax.plot(xs, avg, color=line.get_color(), lw=1.8, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:  # keeps the extension: savefig writes the format it names
        fig.savefig(tmp)
    plt.close(fig)


class Clock:
    """Wall-clock budget and ETA for a run that may resume (time spent before is carried in)."""

    def __init__(self, spent: float = 0.0) -> None:
        self.start = time.time() - spent

    @property
    def spent(self) -> float:
        return time.time() - self.start
