"""Train the painting network of the arbitrary-style method: ``huafeng train arbitrary``.

The decoder of :class:`huafeng.methods.paint_net.PaintNet` learns to paint: for a photo x, a painting
s (at a random analysis size, which sets the stroke size) and x_r = x recoloured to s's palette,
y = D(AdaIN(E(x_r), E(s))) minimises, with VGG16 features φ_l (a network the Lite0 encoder is not):

    L = w_c Σ_{l∈{3_1,4_1}} ‖φ_l(y) − φ_l(x_r)‖² / ‖φ_l(x_r)‖²                       (content)
      + w_m Σ_{l∈{1_1..4_1}} d_ms(φ_l(y), s) / d_ms(φ_l(x_r), s)                      (style: mean/std)
      + w_g Σ_{l∈{1_1..4_1}} ‖G_l(y) − G_l(s)‖² / ‖G_l(x_r) − G_l(s)‖²              (style: Gram)
      + w_p ‖P(y − x_r)‖²                                                            (no fixed-period pattern)
      + w_f ‖E(y) − t‖² / ‖t − t̄‖²                                                  (decode the painting's features)

where d_ms is the squared distance of per-channel means and standard deviations, the style terms are
relative to the recoloured photo's own distance (1 = unchanged, 0 = the painting's statistics), and
P(d) is the mean 8×8 pattern of d over the stride-8 lattice (its mean removed): a grid that repeats
at the encoder's stride averages to a pattern, anything else averages away. The last term is AdaIN's
own content loss (Huang & Belongie 2017): t = AdaIN/WCT(E(x_r), E(s)) is the decoder's input, and the
painted picture, encoded again by the frozen Lite0 encoder E, should give it back, so the decoder
renders the painting's feature statistics rather than one texture that suits every painting (off by
default: ``feature_weight``; the main run turned it on at step 1000, see huafeng/weights/arbitrary.md).

The paintings' statistics (VGG16 means, deviations and Grams; Lite0 means and deviations; palette)
are computed once per painting and size and cached in the run folder (``style_bank.safetensors``).
The held-out check and ``paint.safetensors`` use an exponential moving average of the decoder's weights
(``ema``; the raw weights swing from one check to the next at this learning rate and batch).
Resumable: ``checkpoint.safetensors`` holds model, its average, optimizer, step and log; a run killed at any
moment (``kill -9``) resumes from its last checkpoint with a contiguous log.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..errors import SettingsError
from ..features import FeatureExtractor
from ..image import read_image, resize_long_side
from ..losses import gram_matrix, mean_std
from ..methods.paint_net import (ARCHS, PaintDecoder, PaintingStats, PaintNet, feature_moments, palette_map,
                                 shrunk_power)
from ..weights import load_file, save_file, shipped_path
from .common import (Clock, ImageBank, list_images, load_checkpoint, plot_curves, save_checkpoint, split_photos,
                     write_json)

Tensor = torch.Tensor

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYERS = ("relu3_1", "relu4_1")
# Paintings never trained on (≥ 10% of the set): the eight first ones make the contact sheet.
SHEET_STYLES = ("picabia_udnie.jpg", "kandinsky_composition_vii.jpg", "munch_the_scream.jpg",
                "monet_water_lilies_1919.jpg", "toulouse_lautrec_in_bed.png", "matisse_the_painters_family.jpg",
                "turner_burning_of_the_houses_of_parliament.jpg", "xu_wei_ink_grapes.jpg")
HOLD_OUT_EVERY = 12   # and every 12th of the remaining paintings (sorted by name)


@dataclass(frozen=True)
class PaintTrainSettings:
    content_dir: str
    style_dirs: tuple[str, ...]
    out: str = "runs/arbitrary"
    steps: int = 30_000
    minutes: float | None = None       # stop after this much training time (resumes count what was spent)
    batch: int = 8
    crop: int = 128
    lr: float = 5e-4
    decay_from: int | None = 24_000    # cosine decay of the learning rate from here to 0 at ``steps``
    style_sizes: tuple[int, ...] = (384, 512, 640)
    content_weight: float = 1.0
    ms_weight: float = 3.0
    gram_weight: float = 1.5
    grid_weight: float = 100.0
    feature_weight: float = 0.0        # w_f: the decoded picture's encoder features vs the decoder's input
    ema: float = 0.999                 # the held-out check and paint.safetensors use an exponential moving
                                       # average of the decoder's weights with this decay (0: the raw weights)
    transform: str = "adain"           # "adain" or "wct" (PaintNet's feature transform)
    init: str = "photoreal"            # warm start: the L4 decoder of this shipped name or file ("" = none)
    eval_photos: int = 8
    eval_photo_size: int = 256         # the held-out check: photos at this long side, paintings at eval_style_size
    eval_style_size: int = 512
    eval_every: int = 500
    checkpoint_every: int = 200
    threads: int = 0                   # torch threads (0: leave as is)
    device: str = "cpu"                # "cuda" on a GPU (tools/gpu_paint.sh); checkpoints are device-free
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch < 1 or self.steps < 1 or self.crop < 32 or self.crop % 8:
            raise SettingsError("batch and steps must be ≥ 1, crop a multiple of 8 and ≥ 32 px.")
        if not self.style_dirs:
            raise SettingsError("give at least one folder of paintings.")
        if self.transform not in ARCHS.values():
            raise SettingsError(f"transform must be one of {sorted(ARCHS.values())}, got {self.transform!r}.")


def split_paintings(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(training, held out): the sheet's paintings and every HOLD_OUT_EVERY-th other one are held out."""
    files = sorted(files, key=lambda p: p.name)
    rest = [p for p in files if p.name not in SHEET_STYLES]
    held = {p.name for p in files if p.name in SHEET_STYLES} | {p.name for p in rest[HOLD_OUT_EVERY - 1::HOLD_OUT_EVERY]}
    return [p for p in files if p.name not in held], [p for p in files if p.name in held]


def _lr(s: PaintTrainSettings, step: int) -> float:
    if s.decay_from is None or step < s.decay_from:
        return s.lr
    t = min(1.0, (step - s.decay_from) / max(s.steps - s.decay_from, 1))
    return s.lr * 0.5 * (1 + math.cos(math.pi * t))


def vgg_stats(vgg: FeatureExtractor, img: Tensor) -> dict[str, Tensor]:
    """VGG16 mean, std and Gram of ``img`` at the style layers: keys ``LAYER.mean|std|gram``."""
    feats = vgg(img, STYLE_LAYERS)
    out = {}
    for name in STYLE_LAYERS:
        m, s = mean_std(feats[name])
        out[f"{name}.mean"], out[f"{name}.std"], out[f"{name}.gram"] = m.flatten(1), s.flatten(1), gram_matrix(feats[name])
    return out


class StyleBank:
    """Per (painting, size): VGG16 statistics, Lite0 AdaIN statistics and the palette, cached on disk."""

    def __init__(self, files: list[Path], sizes: tuple[int, ...], net: PaintNet, vgg: FeatureExtractor,
                 cache: Path, log=print, device: torch.device = torch.device("cpu")) -> None:
        keys = [f"{p.name}@{z}" for p in files for z in sizes]
        stored: dict[str, Tensor] = {}
        if cache.exists():
            stored, meta = load_file(cache, dtype=None)
            if meta.get("keys", "").split("|") != keys:
                stored = {}
        if not stored:
            rows: dict[str, list[Tensor]] = {}
            t0 = time.time()
            for i, p in enumerate(files):
                img, _ = read_image(p)
                for z in sizes:
                    x = resize_long_side(img, z).to(device)
                    with torch.no_grad():
                        st = net.painting_stats(x)
                        v = vgg_stats(vgg, x)
                    v.update({"palette_mean": st.palette_mean, "palette_cov": st.palette_cov,
                              "feat_mean": st.feat_mean.flatten(1), "feat_std": st.feat_std.flatten(1)})
                    for k, t in v.items():
                        rows.setdefault(k, []).append(t[0].cpu())
                if (i + 1) % 20 == 0 or i + 1 == len(files):
                    log(f"style bank: {i + 1}/{len(files)} paintings ({time.time() - t0:.0f} s)", flush=True)
            stored = {k: torch.stack(v).contiguous() for k, v in rows.items()}
            save_file(stored, cache, {"keys": "|".join(keys)})
        self.keys, self.t = keys, {k: v.to(device) for k, v in stored.items()}
        if net.transform == "wct":  # the Lite0 covariance roots, in a file of their own (Lite0 only: fast)
            self.t["feat_root"] = self._roots(files, sizes, net, cache.with_name(cache.stem + "_wct.safetensors"),
                                              log).to(device)

    def _roots(self, files: list[Path], sizes: tuple[int, ...], net: PaintNet, cache: Path, log) -> Tensor:
        if cache.exists():
            stored, meta = load_file(cache, dtype=None)
            if meta.get("keys", "").split("|") == self.keys:
                return stored["feat_root"]
        rows, t0 = [], time.time()
        for i, p in enumerate(files):
            img, _ = read_image(p)
            for z in sizes:
                with torch.no_grad():
                    f = net.encode(resize_long_side(img, z))
                    rows.append(shrunk_power(feature_moments(f)[1], 0.5)[0].float())
            if (i + 1) % 50 == 0 or i + 1 == len(files):
                log(f"style bank (WCT roots): {i + 1}/{len(files)} paintings ({time.time() - t0:.0f} s)", flush=True)
        roots = torch.stack(rows).contiguous()
        save_file({"feat_root": roots}, cache, {"keys": "|".join(self.keys)})
        return roots

    def __len__(self) -> int:
        return len(self.keys)

    def painting(self, idx: list[int]) -> PaintingStats:
        t = self.t
        return PaintingStats(t["palette_mean"][idx], t["palette_cov"][idx],
                             t["feat_mean"][idx][..., None, None], t["feat_std"][idx][..., None, None],
                             t["feat_root"][idx] if "feat_root" in t else None)

    def vgg(self, idx: list[int]) -> dict[str, Tensor]:
        return {k: v[idx] for k, v in self.t.items() if k.split(".")[0] in STYLE_LAYERS}


def lattice_pattern(d: Tensor, period: int = 8) -> Tensor:
    """The mean ``period``×``period`` pattern of ``d`` over its lattice cells, its own mean removed."""
    b, c, h, w = d.shape
    h, w = h - h % period, w - w % period
    p = d[..., :h, :w].reshape(b, c, h // period, period, w // period, period).mean((2, 4))
    return p - p.mean((2, 3), keepdim=True)


def feature_loss(net: PaintNet, y: Tensor, t: Tensor) -> Tensor:
    """‖E(y) − t‖² / ‖t − t̄‖² (t̄: each channel's mean): the painted picture's encoder features against the
    decoder's input, relative to that input's own spread (1 ≈ a picture that lost them)."""
    d = (net.encode(y) - t).pow(2).sum()
    return d / (t - t.mean((2, 3), keepdim=True)).pow(2).sum().clamp_min(1e-8)


def paint_losses(vgg: FeatureExtractor, y: Tensor, xr: Tensor, target: dict[str, Tensor]) -> dict[str, Tensor]:
    """The loss terms of the module docstring for a batch (each a scalar tensor), but the feature term."""
    fy = vgg(y, STYLE_LAYERS)
    with torch.no_grad():
        fx = vgg(xr, STYLE_LAYERS)
    content = sum((fy[n] - fx[n]).pow(2).sum() / fx[n].pow(2).sum().clamp_min(1e-8) for n in CONTENT_LAYERS)
    ms, gram = y.new_zeros(()), y.new_zeros(())
    for n in STYLE_LAYERS:
        tm, ts, tg = target[f"{n}.mean"], target[f"{n}.std"], target[f"{n}.gram"]
        my, sy = (t.flatten(1) for t in mean_std(fy[n]))
        with torch.no_grad():
            mx, sx = (t.flatten(1) for t in mean_std(fx[n]))
            ref_ms = ((mx - tm).pow(2) + (sx - ts).pow(2)).sum().clamp_min(1e-8)
            ref_g = (gram_matrix(fx[n]) - tg).pow(2).sum().clamp_min(1e-8)
        ms = ms + ((my - tm).pow(2) + (sy - ts).pow(2)).sum() / ref_ms
        gram = gram + (gram_matrix(fy[n]) - tg).pow(2).sum() / ref_g
    k = len(STYLE_LAYERS)
    grid = lattice_pattern(y - xr).pow(2).mean()
    return {"content": content, "ms": ms / k, "gram": gram / k, "grid": grid}  # type: ignore[dict-item]


def warm_start(decoder: PaintDecoder, ref: str) -> None:
    """Load the L4 reconstruction decoder (``L4.*`` keys) of a shipped name or file into ``decoder``."""
    path = ref if ref.endswith(".safetensors") else shipped_path(ref)
    tensors, _ = load_file(path)
    sub = {k[3:]: v for k, v in tensors.items() if k.startswith("L4.")}
    if not sub:
        raise SettingsError(f"{path} holds no L4 decoder to start from.")
    missing, unexpected = decoder.load_state_dict(sub, strict=False)
    if unexpected or any(not k.startswith("res.") for k in missing):
        raise SettingsError(f"{path}: its L4 decoder does not fit the painting decoder.")


@dataclass
class _State:
    step: int = 0
    spent: float = 0.0
    log: list = field(default_factory=list)


def train_paint(s: PaintTrainSettings, log=print) -> dict:
    """Train (or resume) the painting network; returns a summary. Writes into ``s.out``:
    ``checkpoint.safetensors``, ``paint.safetensors`` (for ``--weights``), ``log.json``, ``curves.png``,
    ``samples.jpg`` (held-out photos × held-out paintings at each evaluation)."""
    if s.threads:
        torch.set_num_threads(s.threads)
    torch.set_flush_denormal(True)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(s.seed)
    torch.manual_seed(s.seed)
    eval_files, train_files = split_photos(s.content_dir, s.eval_photos)
    train_p, held_p = split_paintings([p for d in s.style_dirs for p in list_images(d)])
    if not train_p:
        raise SettingsError("every painting given is held out; give more paintings.")
    net = PaintNet(transform=s.transform)
    vgg = FeatureExtractor("vgg16", STYLE_LAYERS)
    content = ImageBank(train_files, 512)
    log(f"{len(content)} photos, {len(train_p)} paintings ({len(held_p)} held out), sizes {s.style_sizes}", flush=True)
    dev = torch.device(s.device)
    net.decoder.to(dev)
    bank = StyleBank(train_p, s.style_sizes, net, vgg, out / "style_bank.safetensors", log, dev)
    opt = torch.optim.Adam(net.decoder.parameters(), lr=s.lr)
    state = _State()
    ckpt = out / "checkpoint.safetensors"
    averaged: dict[str, Tensor] = {}
    if ckpt.exists():
        model, state.step, _, extra = load_checkpoint(ckpt, opt)
        averaged = {k[4:]: v for k, v in model.items() if k.startswith("ema.")}
        net.decoder.load_state_dict({k: v for k, v in model.items() if not k.startswith("ema.")})
        state.spent, state.log = extra.get("spent", 0.0), extra.get("log", [])
        state.log = [r for r in state.log if r["step"] <= state.step]
        rng.seed(s.seed + state.step)
        log(f"resumed at step {state.step}", flush=True)
    elif s.init:
        warm_start(net.decoder, s.init)
    ema_net = PaintNet(PaintDecoder().to(dev), transform=s.transform) if s.ema else net
    if s.ema:  # a new run, or a checkpoint from before the average, starts it from the weights
        ema_net.decoder.load_state_dict(averaged or net.decoder.state_dict())
        ema_net.decoder.requires_grad_(False)
    clock = Clock(state.spent)
    from .paint_eval import PaintEval  # the held-out check and the samples sheet

    # the check's paintings: held-out ones (the sheet's first); a tiny set with none held out uses its own
    eval_p = ([p for p in held_p if p.name in SHEET_STYLES] + [p for p in held_p if p.name not in SHEET_STYLES])[:4]
    evaluator = PaintEval(eval_files, eval_p or train_p[:4], ema_net, vgg, s.eval_photo_size, s.eval_style_size, dev)

    def checkpoint() -> None:
        model = {k: v.detach().cpu().clone() for k, v in net.decoder.state_dict().items()}
        averaged = {k: v.detach().cpu().clone() for k, v in ema_net.decoder.state_dict().items()}
        both = {**model, **{f"ema.{k}": v for k, v in averaged.items()}} if s.ema else model
        save_checkpoint(ckpt, both, opt, state.step, asdict(s), {"spent": clock.spent, "log": state.log})
        meta = {"arch": net.arch, "steps": state.step, "minutes": round(clock.spent / 60, 1),
                "held_out": ",".join(p.name for p in held_p), "ema": str(s.ema)}
        save_file(averaged, out / "paint.safetensors", meta)
        write_json(out / "log.json", {"settings": asdict(s), "held_out": [p.name for p in held_p], "log": state.log})
        plot_curves(state.log, out / "curves.png", ["content", "ms", "gram", "eval_ms", "eval_gram"],
                    title="arbitrary painting network (train, and held-out eval_*)")

    t_last, n_last = time.time(), state.step
    while state.step < s.steps and not (s.minutes is not None and clock.spent >= s.minutes * 60):
        net.decoder.train()
        for g in opt.param_groups:
            g["lr"] = _lr(s, state.step)
        x = content.crops(s.batch, s.crop, rng, scale=(0.3, 0.9)).to(dev)
        idx = [rng.randrange(len(bank)) for _ in range(s.batch)]
        st = bank.painting(idx)
        with torch.no_grad():
            xr = net.recolour(x, st)
        t = net.stylized_features(x, st, recoloured=xr)
        y = palette_map(net.decoder(t), st)
        terms = paint_losses(vgg, y, xr, bank.vgg(idx))
        if s.feature_weight:
            terms["feat"] = feature_loss(net, y, t.detach())
        total = (s.content_weight * terms["content"] + s.ms_weight * terms["ms"] + s.gram_weight * terms["gram"]
                 + s.grid_weight * terms["grid"] + s.feature_weight * terms.get("feat", 0.0))
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if s.ema:
            with torch.no_grad():
                for a, w in zip(ema_net.decoder.parameters(), net.decoder.parameters()):
                    a.lerp_(w, 1 - s.ema)
        state.step += 1
        row = {"step": state.step, **{k: round(v.item(), 5) for k, v in terms.items()},
               "total": round(total.item(), 5), "time": round(clock.spent, 1)}
        if state.step % s.eval_every == 0 or state.step == 1:
            row.update(evaluator(out / "samples.jpg", state.step))
        state.log.append(row)
        if state.step % 10 == 0:
            rate = (time.time() - t_last) / max(state.step - n_last, 1)
            t_last, n_last = time.time(), state.step
            log(f"step {state.step}/{s.steps} loss {row['total']:.4f} (c {row['content']:.3f} ms {row['ms']:.3f} "
                f"g {row['gram']:.3f} grid {row['grid']:.2e}{' feat %.3f' % row['feat'] if 'feat' in row else ''}) "
                f"{rate:.2f} s/step, "
                f"ETA {(s.steps - state.step) * rate / 3600:.1f} h", flush=True)
        if state.step % s.checkpoint_every == 0:
            checkpoint()
    checkpoint()
    evals = [r for r in state.log if "eval_ms" in r]
    return {"steps": state.step, "minutes": round(clock.spent / 60, 1), "last_eval": evals[-1] if evals else {},
            "out": str(out), "held_out": [p.name for p in held_p]}
