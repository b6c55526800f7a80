"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2016), coarse to fine.

The picture itself is optimised, with L-BFGS by default, starting from the content photo:

    x* = argmin_x  α Σ_l ‖F_l(x) − F_l(c)‖²/‖F_l(c)‖²  +  β Σ_k w_k Σ_l ‖G_l(x) − G_l(s_k)‖²/‖G_l(s_k)‖²  +  γ TV(x)

Departures from the paper, each measured here:
- Losses are normalised per layer (relative errors), so one style weight works across layers
  and backbones.
- Coarse to fine (256 → 512 → … → size): each scale starts from the previous result upsampled,
  which keeps brush strokes proportional to the picture and bounds the work at high resolution.
- Pixel range is kept by a soft penalty instead of clamping (clamping breaks L-BFGS' curvature).
- With ``lite0`` the loss network is anti-aliased (``features.Lite0AA``: a blur before each stride-2
  convolution). Plain Lite0's strided depthwise layers let a 2-px checkerboard lower the loss: colour
  speckle at 100% zoom, periodic score 15.4 dB on 8 held-out photos at 512 px; anti-aliased, 8.5 dB.
- Several styles are blended by weighting their style losses; a region mask weights the Gram
  matrices spatially (a masked Gram per style).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F

from .. import controls as ctl
from ..errors import SettingsError
from ..features import FeatureExtractor
from ..image import resize_long_side
from ..losses import content_loss, gram_matrix, style_loss, total_variation

Tensor = torch.Tensor

# Layers per backbone, chosen by looking at contact sheets (docs/optimize_sheet.jpg).
# lite0: post-ReLU6 outputs at strides 2/2/4/8/16, like VGG's relu1_1 … relu5_1.
LAYERS = {
    "lite0": dict(style=("stem", "block1_expand", "block3_expand", "block5_expand", "block8_expand"),
                  content=("block5_expand",)),
    "vgg16": dict(style=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                  content=("relu4_2",)),
}
# Iterations at the coarsest scale: what fits the time targets (≤ 30 s / ≤ 120 s at 512 px here).
DEFAULT_STEPS = {"lite0": 120, "vgg16": 50}
# the feature network each backbone setting runs: Lite0 anti-aliased (no 2-px checkerboard, see above)
EXTRACTORS = {"lite0": "lite0-aa", "vgg16": "vgg16"}
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "recolor", "noise")


@dataclass(frozen=True)
class OptimizeSettings:
    """Settings of the optimisation method; the CLI derives its defaults from these."""

    backbone: str = "lite0"
    size: int = 512                 # long side of the result, in pixels
    steps: int | None = None        # iterations at the coarsest scale (each finer one gets half); None: per backbone
    min_scale: int = 256            # the coarsest scale's long side
    style_weight: float = 1e3
    content_weight: float = 1.0
    tv_weight: float = 0.5
    style_scale: float = 1.0        # style image size relative to the picture at each scale
    optimizer: str = "lbfgs"
    init: str = "content"           # content, recolor (content in the style's colours), noise
    seed: int = 0

    def __post_init__(self) -> None:
        if self.backbone not in LAYERS:
            raise SettingsError(f"unknown backbone {self.backbone!r}; choose one of: {', '.join(LAYERS)}.")
        if self.optimizer not in OPTIMIZERS:
            raise SettingsError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}.")
        if self.init not in INITS:
            raise SettingsError(f"unknown init {self.init!r}; choose one of: {', '.join(INITS)}.")
        ctl.check_output_settings(self.size)
        if self.steps is not None and self.steps < 1:
            raise SettingsError(f"steps must be at least 1, got {self.steps}.")
        if min(self.style_weight, self.content_weight, self.tv_weight) < 0 or self.style_scale <= 0:
            raise SettingsError("weights must be non-negative and style_scale positive.")

    def scales(self) -> list[int]:
        """Long sides of the coarse-to-fine pyramid, ending at ``size``."""
        out, s = [], self.min_scale
        while s < self.size:
            out.append(s)
            s *= 2
        return out + [self.size]

    def steps_at(self, i: int) -> int:
        steps = self.steps if self.steps is not None else DEFAULT_STEPS[self.backbone]
        return max(steps >> i, min(steps, 10))


MIN_SIDE = 32  # the backbones need a few pixels per side; thinner pictures are padded, then cropped


class OptimizeStylizer:
    """Gatys et al. with multi-scale L-BFGS. ``stylize`` returns (1, 3, H, W) in [0,1]."""

    method = "optimize"

    def __init__(self, settings: OptimizeSettings = OptimizeSettings()) -> None:
        self.settings = settings
        layers = LAYERS[settings.backbone]
        self.style_layers, self.content_layers = layers["style"], layers["content"]
        self.extractor = FeatureExtractor(EXTRACTORS[settings.backbone], self.style_layers + self.content_layers)

    def stylize(self, content: Tensor, styles: list[Tensor], weights: list[float] | None = None,
                controls: ctl.Controls = ctl.Controls(), progress: ctl.ProgressFn | None = None) -> Tensor:
        s = self.settings
        torch.set_flush_denormal(True)  # denormals made steps up to 3x slower on these CPUs
        weights = ctl.normalize_weights(weights or [1.0] * len(styles))
        if len(weights) != len(styles):
            raise SettingsError(f"{len(styles)} styles but {len(weights)} weights.")
        if controls.preserve_color == "histogram":
            styles = [ctl.match_color(st, content) for st in styles]
        gen = torch.Generator().manual_seed(s.seed)
        scales = s.scales()
        totals = [s.steps_at(i) for i in range(len(scales))]
        done = 0
        x: Tensor | None = None
        for i, side in enumerate(scales):
            c = resize_long_side(content, side)
            if x is None:
                x = self._init(c, styles, weights, gen)
            else:
                x = F.interpolate(x, size=c.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
            x = self._optimize_scale(x, c, styles, weights, controls, totals[i],
                                     lambda k, loss, i=i, side=side: progress and progress(ctl.Progress(
                                         f"scale {i + 1}/{len(scales)} ({side} px)", done + k, sum(totals), loss)))
            done += totals[i]
        assert x is not None  # scales() always ends with the full size
        return ctl.apply_after(content, x.detach().clamp(0, 1), controls, len(styles))

    def _init(self, c: Tensor, styles: list[Tensor], weights: list[float], gen: torch.Generator) -> Tensor:
        init = self.settings.init
        if init == "noise":
            return torch.rand(c.shape, generator=gen).to(c)
        x = c.clone()
        if init == "recolor":  # helps styles with large flat colour fields move away from the photo
            x = ctl.match_color(x, styles[max(range(len(styles)), key=weights.__getitem__)])
        # a little seeded noise, so the seed matters and flat regions can grow texture
        return (x + 0.02 * torch.randn(c.shape, generator=gen).to(c)).clamp(0, 1)

    def _targets(self, c: Tensor, styles: list[Tensor], weights: list[float], masks) -> tuple[dict, list]:
        feats = self.extractor(_pad_min(c), self.content_layers)
        side = max(c.shape[-2:]) * self.settings.style_scale
        grams: list[dict[str, Tensor]] = []
        for st in styles:
            f = self.extractor(_pad_min(resize_long_side(st, max(int(side), MIN_SIDE))), self.style_layers)
            grams.append({n: gram_matrix(f[n]) for n in self.style_layers})
        if masks is None:  # no regions: one blended target (the weighted mean of the Grams)
            grams = [{n: cast(Tensor, sum(w * g[n] for w, g in zip(weights, grams))) for n in self.style_layers}]
        return {n: feats[n] for n in self.content_layers}, grams

    def _optimize_scale(self, x: Tensor, c: Tensor, styles, weights, controls: ctl.Controls,
                        steps: int, report) -> Tensor:
        s = self.settings
        masks = ctl.region_masks(controls.mask, len(styles), tuple(c.shape[-2:]))
        with torch.no_grad():
            content_t, grams_t = self._targets(c, styles, weights, masks)
        x = x.detach().clone().requires_grad_(True)
        evals = [0]

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            feats = self.extractor(_pad_min(x))
            lc = sum(content_loss(feats[n], content_t[n], normalize=True) for n in self.content_layers)
            ls: Tensor | float = 0.0
            for k, g_t in enumerate(grams_t):  # one target, or one per masked region
                m = masks[k] if masks is not None else None
                ls = ls + sum(style_loss(gram_matrix(feats[n], m), g_t[n], normalize=True)
                                  for n in self.style_layers) / len(self.style_layers)
            range_penalty = (F.relu(x - 1).pow(2) + F.relu(-x).pow(2)).mean() * 1e3
            loss = s.content_weight * lc + s.style_weight * ls + s.tv_weight * total_variation(x) + range_penalty
            loss.backward()
            evals[0] += 1
            report(min(evals[0], steps), loss.item())
            return loss

        opt: torch.optim.Optimizer
        if s.optimizer == "lbfgs":
            opt = torch.optim.LBFGS([x], lr=1, max_iter=steps, max_eval=steps, history_size=20,
                                    tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")
            opt.step(closure)
        else:
            opt = torch.optim.Adam([x], lr=0.02)
            for _ in range(steps):
                opt.step(closure)
        report(steps, None)
        return x.detach()


def _pad_min(x: Tensor) -> Tensor:
    """Replicate-pad a picture whose sides are under MIN_SIDE, for feature extraction only."""
    h, w = x.shape[-2:]
    if h >= MIN_SIDE and w >= MIN_SIDE:
        return x
    ph, pw = max(MIN_SIDE - h, 0), max(MIN_SIDE - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
