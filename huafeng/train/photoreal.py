"""Train the photoreal method's decoders for reconstruction (Li et al. 2017): ``huafeng train photoreal``.

Each level's decoder learns to invert the frozen Lite0 encoder at that level:

    L_level = ‖D(E(x)) − x‖₁  +  λ · ‖E(D(E(x))) − E(x)‖² / ‖E(x)‖²

on random crops of photos, with a share of augmented painting crops so the decoders also render
painterly textures. Reconstruction converges far faster than training with a style loss, and works
for any style picture by construction (the style enters only through WCT at inference).

Under torchrun (``torchrun --nproc_per_node N -m huafeng.train photoreal ...`` or ``--nproc N``) each
process takes an equal shard of the same global batch and DistributedDataParallel averages the
gradients, so N processes follow the single-process loss curve (see :mod:`huafeng.train.distributed`).
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import controls as ctl
from ..errors import SettingsError
from ..features import FeatureExtractor
from ..methods.photoreal import LEVELS, Decoder
from ..weights import save_file
from . import distributed
from .common import Clock, ImageBank, list_images, load_checkpoint, plot_curves, save_checkpoint, split_photos, write_json

# Paintings kept out of training, so the contact sheet can show unseen ones (docs/photoreal_sheet.jpg).
HELD_OUT_STYLES = ("picabia_udnie.jpg", "kandinsky_composition_vii.jpg", "munch_the_scream.jpg",
                   "monet_water_lilies_1919.jpg", "toulouse_lautrec_in_bed.png")


@dataclass(frozen=True)
class PhotorealTrainSettings:
    content_dir: str
    style_dir: str
    out: str = "runs/photoreal"
    levels: tuple[str, ...] = ("L1", "L2", "L3", "L4")
    steps: int = 100_000
    minutes: float | None = None      # stop after this much training time (resumes count what was spent)
    batch: int = 4
    crop: int = 192
    lr: float = 1e-3
    decay_from: int | None = None     # cosine decay of the learning rate from this step down to 0 at ``steps``
    painting_fraction: float = 0.3
    feature_weight: float = 0.5
    held_out_styles: tuple[str, ...] = HELD_OUT_STYLES
    eval_photos: int = 8              # photos held out for the PSNR check
    eval_every: int = 250
    checkpoint_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [lv for lv in self.levels if lv not in LEVELS]
        if bad or not self.levels:
            raise SettingsError(f"levels must be one or more of {', '.join(LEVELS)}.")
        if self.batch < 1 or self.crop < 32 or self.steps < 1:
            raise SettingsError("batch must be ≥ 1, crop ≥ 32 px and steps ≥ 1.")


@dataclass
class _State:
    step: int = 0
    spent: float = 0.0
    log: list = field(default_factory=list)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a, b).item()
    return 10 * math.log10(1 / max(mse, 1e-12))


def _lr(s: PhotorealTrainSettings, step: int) -> float:
    """Constant, then (with ``decay_from``) a cosine decay to zero at ``s.steps``."""
    if s.decay_from is None or step < s.decay_from:
        return s.lr
    return s.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - s.decay_from) / max(s.steps - s.decay_from, 1))))


def train_photoreal(s: PhotorealTrainSettings, progress: ctl.ProgressFn | None = None) -> dict:
    """Train (or resume) the decoders; returns a summary. Writes into ``s.out`` (rank 0 only):

    ``checkpoint.safetensors`` (resumable), ``decoders.safetensors`` (for ``--weights``), ``log.json``,
    ``curves.png``.
    """
    with distributed.session() as d:
        return _train(s, d, progress if d.main else None)


def _train(s: PhotorealTrainSettings, d: distributed.Dist, progress: ctl.ProgressFn | None) -> dict:
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(s.seed)
    torch.manual_seed(s.seed)
    eval_files, train_files = split_photos(s.content_dir, s.eval_photos)
    paintings = [p for p in list_images(s.style_dir) if p.name not in s.held_out_styles]
    content, styles = ImageBank(train_files, 512), ImageBank(paintings, 768)
    evalset = torch.cat([ImageBank(eval_files, 512).crops(1, 256, random.Random(i)) for i in range(len(eval_files))])
    encoder = FeatureExtractor("lite0", [LEVELS[lv] for lv in s.levels]).to(d.device)
    decoders = {lv: Decoder(lv).to(d.device) for lv in s.levels}  # same seed: same start on every rank
    params = [p for dec in decoders.values() for p in dec.parameters()]
    opt = torch.optim.Adam(params, lr=s.lr)
    state = _State()
    ckpt = out / "checkpoint.safetensors"
    if ckpt.exists():
        model, state.step, _, extra = load_checkpoint(ckpt, opt)
        for lv, dec in decoders.items():
            dec.load_state_dict({k[len(lv) + 1:]: v for k, v in model.items() if k.startswith(lv + ".")})
        state.spent, state.log = extra.get("spent", 0.0), extra.get("log", [])
        rng.seed(s.seed + state.step)
    clock = Clock(state.spent)
    n_paint = round(s.batch * s.painting_fraction)
    nets = {lv: d.wrap(dec) for lv, dec in decoders.items()}  # DDP: gradients averaged over ranks

    def checkpoint() -> None:
        if not d.main:
            d.barrier()  # until rank 0 has written it
            return
        model = {f"{lv}.{k}": v for lv, dec in decoders.items() for k, v in dec.state_dict().items()}
        save_checkpoint(ckpt, model, opt, state.step, asdict(s), {"spent": clock.spent, "log": state.log})
        meta = {"arch": "huafeng-photoreal-wct-lite0", "levels": ",".join(s.levels), "steps": state.step,
                "minutes": round(clock.spent / 60, 1), "last_eval": state.log[-1] if state.log else {}}
        save_file(model, out / "decoders.safetensors", meta)
        write_json(out / "log.json", {"settings": asdict(s), "log": state.log})
        d.barrier()

    while state.step < s.steps and not d.any(s.minutes is not None and clock.spent >= s.minutes * 60):
        # The global batch, drawn alike on every rank; each rank keeps its shard.
        x = torch.cat([content.crops(s.batch - n_paint, s.crop, rng),
                       styles.crops(n_paint, s.crop, rng, scale=(0.2, 1.0), jitter=0.1)]) if n_paint else \
            content.crops(s.batch, s.crop, rng)
        x = d.shard(x)
        for g in opt.param_groups:
            g["lr"] = _lr(s, state.step)
        with torch.no_grad():
            feats = encoder(x)
        opt.zero_grad(set_to_none=True)
        row: dict[str, float] = {"step": state.step + 1}
        total: torch.Tensor | float = 0.0  # a tensor from the first level on
        values: dict[str, float] = {}
        for lv, net in nets.items():
            f = feats[LEVELS[lv]]
            y = net(f, tuple(x.shape[-2:]))
            pix = (y - x).abs().mean()
            fy = encoder(y, [LEVELS[lv]])[LEVELS[lv]]
            # Relative to the global batch's energy: its average over ranks (see distributed.Dist.average).
            feat = (fy - f).pow(2).sum() / d.average(f.pow(2).sum()).clamp_min(1e-8)
            loss = pix + s.feature_weight * feat
            total = total + loss
            values[f"{lv}_pix"], values[f"{lv}_feat"] = pix.item(), feat.item()
        # a tensor: the settings refuse an empty levels
        assert isinstance(total, torch.Tensor)
        total.backward()
        row.update(d.mean(values))
        opt.step()
        state.step += 1
        row["time"] = round(clock.spent, 1)
        if d.main and (state.step % s.eval_every == 0 or state.step == 1):
            with torch.no_grad():
                ev = evalset.to(d.device)
                ef = encoder(ev)
                for lv, dec in decoders.items():
                    row[f"{lv}_psnr"] = round(psnr(dec(ef[LEVELS[lv]], tuple(ev.shape[-2:])), ev), 2)
        state.log.append(row)
        if progress:
            progress(ctl.Progress("train photoreal", state.step, s.steps,
                                  sum(row[f"{lv}_pix"] + s.feature_weight * row[f"{lv}_feat"] for lv in s.levels)))
        if state.step % s.checkpoint_every == 0:
            checkpoint()
            if d.main:
                keys = [f"{lv}_pix" for lv in s.levels]
                plot_curves(state.log, out / "curves.png", keys, title="photoreal decoders: L1 reconstruction loss")
    checkpoint()
    if d.main:
        keys = [f"{lv}_pix" for lv in s.levels]
        plot_curves(state.log, out / "curves.png", keys, title="photoreal decoders: L1 reconstruction loss")
    evals = [r for r in state.log if any(k.endswith("_psnr") for k in r)]
    return {"steps": state.step, "minutes": round(clock.spent / 60, 1), "last_eval": evals[-1] if evals else {},
            "out": str(out)}
