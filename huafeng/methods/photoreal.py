"""Photorealistic transfer in one pass: a photo in the colours and tone of another picture, its detail kept.

Give it a photo and a second picture (a sunset, a film still, another photo; a painting works too) and
the result is the photo with that picture's colours, contrast and tone, still a photo: its shapes, edges
and fine detail stay its own, in the spirit of FastPhotoStyle and WCT2. This is the default
method for a style picture without a trained network. For a *painting* look (brush strokes, the
painting's textures) use the ``optimize`` method, or, once it ships, the painting network.

How: Universal Style Transfer (Li et al. 2017) on a frozen Lite0 encoder. Decoders are trained for
*reconstruction only* (``huafeng train photoreal``), one per encoder level; at inference the
whitening-colouring transform (WCT) gives the content features the style's covariance, coarse to fine
(L4 → L1), each level decoding to an image that the next level re-encodes. Nothing is trained on
particular pictures, so any picture serves as the look source. Rendering at ``work_size`` with a
luminance detail layer brings the photo's finest detail back at full size. The default levels (L3,
L1) still carry some of the look source's texture (a soft smear on rocks and water, thin halos at
strong edges); ``levels=("L1",)`` alone kept more of the photo in a trial here.

Levels (post-ReLU6 outputs of Lite0): L1 = ``stem`` (stride 2, 32 ch), L2 = ``block1_expand``
(stride 2, 96 ch), L3 = ``block3_expand`` (stride 4, 144 ch), L4 = ``block5_expand`` (stride 8, 240 ch).

Departures from the paper: a Lite0 encoder in place of VGG19 (about 10x cheaper here); decoders
upsample bilinearly before a reflection-padded conv (nearest-neighbour upsampling left grid lines
in a trial here); strength blends at the coarsest level only (blending at every level compounds).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import controls as ctl
from ..errors import SettingsError, WeightsError
from ..features import FeatureExtractor
from ..image import resize_long_side
from ..weights import WEIGHTS_DIR, load_file, read_metadata, shipped_path
from .graphs import ExportModel, PhotorealGraph, PhotorealParts, card_of

Tensor = torch.Tensor

LEVELS = {"L1": "stem", "L2": "block1_expand", "L3": "block3_expand", "L4": "block5_expand"}
# (channels in, width at the feature resolution, [width after each 2x upsampling]) per level.
# Slim at high resolution, where convolutions cost the most on a CPU.
DECODER_SHAPES = {"L1": (32, 32, [16]), "L2": (96, 64, [24]), "L3": (144, 96, [48, 16]),
                  "L4": (240, 128, [64, 32, 16])}


class Decoder(nn.Module):
    """Features at one level -> RGB in [0,1]. Reflection-padded 3x3 convs, bilinear upsampling.

    Layout (e.g. L3): conv(144→96) · [up · conv(→48) · conv(48→48)] · [up · conv(→16) · conv(16→16)] · conv(→3) · sigmoid
    """

    def __init__(self, level: str) -> None:
        super().__init__()
        cin, first, widths = DECODER_SHAPES[level]
        self.level = level
        self.inp = _conv(cin, first)
        self.stages = upsampling_stages(first, widths)
        self.out = _conv(widths[-1] if widths else first, 3)

    def forward(self, f: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        x = F.relu(self.inp(f))
        for stage in self.stages:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = stage(x)
        x = torch.sigmoid(self.out(x))
        if size is not None and x.shape[-2:] != size:  # odd sizes: the encoder rounded up
            x = x[..., : size[0], : size[1]] if x.shape[-2] >= size[0] and x.shape[-1] >= size[1] else \
                F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3))


def upsampling_stages(first: int, widths: list[int] | tuple[int, ...]) -> nn.ModuleList:
    """One stage per 2x upsampling of a decoder: conv(→w) · ReLU · conv(w→w) · ReLU (the upsampling
    itself happens in the decoder's forward, before each stage)."""
    stages, c = nn.ModuleList(), first
    for w in widths:
        stages.append(nn.Sequential(_conv(c, w), nn.ReLU(inplace=True), _conv(w, w), nn.ReLU(inplace=True)))
        c = w
    return stages


# ------------------------------------------------------------------------------------------- WCT
def feature_stats(f: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Mean (C,1) and covariance (C,C) of one feature map (1,C,H,W), returned in float64.

    The centred product is taken in float32 (a float64 product was a third of the method's time
    here); the eigendecompositions that follow run in float64.
    """
    x = f[0].reshape(f.shape[1], -1).float()
    mu = x.mean(1, keepdim=True)
    d = x - mu
    cov = (d @ d.T).double() / max(d.shape[1] - 1, 1)
    return mu.double(), cov + eps * torch.eye(d.shape[0], dtype=torch.float64, device=f.device)


def sym_pow(cov: Tensor, p: float, eps: float = 1e-5) -> Tensor:
    """cov^p for a symmetric positive matrix, through its eigendecomposition (small eigenvalues floored).

    The thread count is left alone: it is the process's, and other calls may be running. (With the CPU
    contended, a 144x144 eigh on 2 threads took ~1.2 s here against ~2 ms on one; see bench_photoreal.)
    """
    e, v = torch.linalg.eigh(cov)
    return v @ torch.diag(e.clamp_min(eps).pow(p)) @ v.T


def wct(content: Tensor, style_stats: tuple[Tensor, Tensor], content_stats: tuple[Tensor, Tensor] | None = None,
        alpha: float = 1.0) -> Tensor:
    r"""Whitening-colouring transform (Li et al. 2017).

    .. math:: \hat f_c = E_c D_c^{-1/2} E_c^\top (f_c - \mu_c), \qquad
              f_{cs} = E_s D_s^{1/2} E_s^\top \hat f_c + \mu_s, \qquad
              \text{out} = \alpha f_{cs} + (1-\alpha) f_c

    ``content_stats`` may be given (computed once for a whole picture, for tiling); otherwise they are
    taken from ``content``. Output has the style's mean and covariance (exactly when alpha = 1).
    """
    mu_s, cov_s = style_stats
    mu_c, cov_c = content_stats if content_stats is not None else feature_stats(content)
    b, c, h, w = content.shape
    # The (C, C) transform is built in float64; applying it to the (C, HW) features in float32 is
    # exact enough (< 1e-5 relative here) and several times faster on a CPU.
    t = (sym_pow(cov_s, 0.5) @ sym_pow(cov_c, -0.5)).to(content.dtype)
    shift = (mu_s - t.double() @ mu_c).to(content.dtype)
    x = content[0].reshape(c, -1)
    out = torch.addmm(shift, t, x).reshape(1, c, h, w)
    return out if alpha >= 1 else alpha * out + (1 - alpha) * content


def blend_stats(stats: list[tuple[Tensor, Tensor]], weights: list[float]) -> tuple[Tensor, Tensor]:
    """Interpolate several styles' statistics (means and covariances mixed linearly)."""
    mu = sum(w * s[0] for s, w in zip(stats, weights))
    cov = sum(w * s[1] for s, w in zip(stats, weights))
    return cast(Tensor, mu), cast(Tensor, cov)  # one or more styles: tensors, not 0


# ---------------------------------------------------------------------------------------- method
@dataclass(frozen=True)
class PhotorealSettings:
    """Settings of the photoreal method; the CLI derives its defaults from these."""

    size: int | None = None     # long side of the result in pixels; None keeps the photo's own size
    style_size: int = 512       # long side the painting is analysed at (x style_scale)
    style_scale: float = 1.0    # bigger: larger brush strokes
    # Coarse to fine. Side by side (docs/photoreal_levels.jpg) L3-L2-L1 and L3-L1 looked the same, and
    # L2 costs ~40% more time; L4 (stride 8) adds larger strokes but blots faces (its decoder is the
    # least accurate: see weights/photoreal.md), so it is opt-in.
    levels: tuple[str, ...] = ("L3", "L1")
    weights: str = "photoreal"  # shipped name, or a path to a .safetensors file from `huafeng train photoreal`
    work_size: int = 512        # stylize at this long side, then restore the photo's fine detail at full
                                # size (fast at any size); 0 renders at full size (tiled above ``tile``)
    detail: float = 1.0         # how much of the photo's fine detail is restored above ``work_size``
    margin: int = 16            # reflected border added while stylizing (no rim along the edges)
    tile: int = 1024            # full-size rendering: larger pictures run in overlapping tiles (bounded memory)
    overlap: int = 64           # context around each tile, in pixels
    backend: str = "torch"      # torch, onnx or onnx-int8: onnxruntime runs encoder, WCT (Newton-Schulz) and
                                # decoders in one graph (one painting, full strength, default levels)

    def __post_init__(self) -> None:
        ctl.check_output_settings(self.size, self.tile, self.overlap, self.backend)
        bad = [lv for lv in self.levels if lv not in LEVELS]
        if bad or not self.levels:
            raise SettingsError(f"levels must be some of {', '.join(LEVELS)}, got {', '.join(self.levels)}.")
        if self.style_scale <= 0:
            raise SettingsError("style_scale must be positive.")
        if self.work_size != 0 and self.work_size < 64:
            raise SettingsError(f"work_size must be 0 (full size) or at least 64 px, got {self.work_size}.")
        if self.detail < 0 or self.margin < 0:
            raise SettingsError("detail and margin must not be negative.")


def restore_detail(small: Tensor, content: Tensor, detail: float = 1.0) -> Tensor:
    r"""Bring a result rendered at low resolution to the photo's size, adding back the photo's fine detail.

    .. math:: y = \uparrow(s) + k\,(Y(c) - Y(\uparrow\downarrow c))

    where :math:`\downarrow` takes the photo to the working size, :math:`\uparrow` is bilinear upsampling
    and :math:`Y` the luminance: the high frequencies the working size cannot hold come from the
    photo, added to every channel (a luminance detail layer), so colours stay the stylization's.
    """
    size = tuple(content.shape[-2:])
    up = F.interpolate(small, size=size, mode="bilinear", align_corners=False)
    if detail <= 0:
        return up.clamp(0, 1)
    low = F.interpolate(F.interpolate(content, size=small.shape[-2:], mode="bilinear", align_corners=False,
                                      antialias=True), size=size, mode="bilinear", align_corners=False)
    lum = torch.tensor([0.299, 0.587, 0.114], dtype=content.dtype, device=content.device).view(1, 3, 1, 1)
    hf = ((content - low) * lum).sum(1, keepdim=True)
    return (up + detail * hf).clamp(0, 1)


def load_decoders(ref: str = "photoreal") -> dict[str, Decoder]:
    """Decoders from a shipped name or a safetensors file (keys ``L1.inp.1.weight`` …)."""
    path = shipped_path(ref) if not ref.endswith(".safetensors") else ref
    tensors, _ = load_file(path)
    decoders = {}
    for level in LEVELS:
        sub = {k[len(level) + 1:]: v for k, v in tensors.items() if k.startswith(level + ".")}
        if not sub:
            continue
        d = Decoder(level)
        try:
            d.load_state_dict(sub)
        except RuntimeError:
            raise WeightsError(f"{path} does not hold huafeng photoreal decoders for {level}.") from None
        # channels-last: ~25% faster convolutions on a CPU (measured here), same numbers
        # (torch's stub lacks Module.to's memory_format keyword, which it takes)
        decoders[level] = d.eval().requires_grad_(False).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if not decoders:
        raise WeightsError(f"{path} holds no photoreal decoders.")
    return decoders


def _tensor_names(path: str) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return list(f.keys())


class PhotorealStylizer:
    """Multi-level WCT with trained reconstruction decoders. ``stylize`` returns (1,3,H,W) in [0,1]."""

    method = "photoreal"

    @staticmethod
    def export_graph(ref: str, ns_iters: int = 40) -> ExportModel | None:
        """``photoreal`` (the shipped decoders) or a file of photoreal decoders (keys ``L1.`` …) as
        one graph, encoder → WCT → decoders at the default levels with the painting as a second input,
        its roots by ``ns_iters`` Newton–Schulz steps; the reference, the same chain with ``eigh``."""
        if ref == "photoreal":
            path = shipped_path("photoreal")
        elif str(ref).endswith(".safetensors") and any(k.startswith(tuple(f"{lv}." for lv in LEVELS))
                                                       for k in _tensor_names(ref)):
            path = Path(ref)
        else:
            return None
        decoders = load_decoders(str(path) if path.parent != WEIGHTS_DIR else path.stem)
        levels = PhotorealSettings().levels  # the method's default levels, coarse to fine
        if any(lv not in decoders for lv in levels):
            raise WeightsError(f"{path.name} lacks a decoder for one of the levels {', '.join(levels)}.")
        parts = PhotorealParts(FeatureExtractor("lite0", [LEVELS[lv] for lv in levels]), decoders, levels,
                               dict(LEVELS))
        graph = PhotorealGraph(parts, "newton-schulz", ns_iters).eval()
        reference = PhotorealGraph(parts, "eigh").eval()
        info = {**read_metadata(path), "levels": json.dumps(list(levels)),
                "wct": f"Newton-Schulz, {ns_iters} iterations, float64"}
        return ExportModel("photoreal", path.stem, graph, reference, ("image", "style"),
                           (path, shipped_path("lite0")), info, card_of(path), int8_keep=("encoder",))

    @staticmethod
    def export_names() -> list[str]:
        return ["photoreal"]

    def __init__(self, settings: PhotorealSettings = PhotorealSettings(), decoders: dict[str, Decoder] | None = None):
        self.settings = settings
        self.decoders = decoders if decoders is not None else load_decoders(settings.weights)
        missing = [lv for lv in settings.levels if lv not in self.decoders]
        if missing:
            raise WeightsError(f"no trained decoder for level(s) {', '.join(missing)}.")
        self.encoder = FeatureExtractor("lite0", [LEVELS[lv] for lv in settings.levels])
        self._stats_cache = ctl.LockedLRU(8)  # painting -> its statistics (shared by concurrent calls)

    def style_stats(self, style: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """Mean and covariance of the painting's features at every level; kept for the last few
        paintings seen, so a video, a batch or a service reuses them."""
        s = self.settings
        style = resize_long_side(style, max(32, int(s.style_size * s.style_scale)))
        key = ctl.picture_key(style)

        def compute() -> dict[str, tuple[Tensor, Tensor]]:
            feats = self.encoder(style)
            return {lv: feature_stats(feats[LEVELS[lv]]) for lv in s.levels}

        return self._stats_cache.get_or_make(key, compute)

    @torch.inference_mode()
    def stylize(self, content: Tensor, styles: list[Tensor], weights: list[float] | None = None,
                controls: ctl.Controls = ctl.Controls(), progress: ctl.ProgressFn | None = None) -> Tensor:
        s = self.settings
        weights = ctl.normalize_weights(weights or [1.0] * len(styles))
        if s.size is not None:
            content = resize_long_side(content, s.size)
        if controls.preserve_color == "histogram":
            styles = [ctl.match_color(st, content) for st in styles]
        all_stats = [self.style_stats(st) for st in styles] if s.backend == "torch" else []
        # Work at ``work_size`` (the detail layer restores full resolution), with a reflected margin.
        reduce = s.work_size and max(content.shape[-2:]) > s.work_size
        x = resize_long_side(content, s.work_size) if reduce else content
        m = s.margin if min(x.shape[-2:]) > 2 * s.margin else 0
        masks = ctl.region_masks(controls.mask, len(styles), tuple(x.shape[-2:]))
        if m:
            x = F.pad(x, (m, m, m, m), mode="reflect")
            masks = None if masks is None else [F.pad(k, (m, m, m, m), mode="replicate") for k in masks]
        if s.backend != "torch":
            x = self._onnx(x, styles, controls.strength, masks)
        else:
            for i, lv in enumerate(s.levels):
                alpha = controls.strength if i == 0 else 1.0  # blend once, at the coarsest level
                stats = [st[lv] for st in all_stats]
                x = self._level(x, lv, stats, weights, alpha, masks)
                if progress:
                    progress(ctl.Progress(f"level {lv}", i + 1, len(s.levels)))
        if m:
            x = x[..., m:-m, m:-m]
        if reduce:
            x = restore_detail(x, content, s.detail)
        # strength was applied in feature space; the rest of the controls act on the picture
        return ctl.apply_after(content, x, ctl.Controls(preserve_color=controls.preserve_color,
                                                        mask=controls.mask if len(styles) == 1 else None),
                               len(styles))

    def _onnx(self, x: Tensor, styles: list[Tensor], strength: float, masks) -> Tensor:
        """All levels in one onnxruntime call (huafeng.export: exported and checked on first use)."""
        s = self.settings
        if len(styles) != 1 or masks is not None or strength < 1 or s.levels != PhotorealSettings().levels:
            raise SettingsError("the onnx backends of the photoreal method take one painting at full strength, "
                                "without a mask, at the default levels; use --backend torch for the rest.")
        from ..backends import named_runner

        style = resize_long_side(styles[0], max(32, int(s.style_size * s.style_scale)))
        return named_runner(s.weights, s.backend)(x, style)

    def _transform(self, f: Tensor, lv: str, stats, weights, alpha, masks, box, content_stats=None) -> Tensor:
        """WCT of one (tile's) features; two styles with a mask: foreground and background."""
        if masks is not None and len(stats) == 2:
            m = F.interpolate(masks[0][..., box[0], box[1]], size=f.shape[-2:], mode="bilinear", align_corners=False)
            return m * wct(f, stats[0], content_stats, alpha) + (1 - m) * wct(f, stats[1], content_stats, alpha)
        return wct(f, blend_stats(stats, weights), content_stats, alpha)

    def _level(self, x: Tensor, lv: str, stats, weights, alpha, masks) -> Tensor:
        """Encode → WCT → decode at one level; in overlapping tiles when the picture is large.

        Tiled, the content statistics are accumulated over every tile's core first (pass 1), so every
        tile is whitened with the whole picture's statistics and tiles don't drift apart (pass 2).
        """
        name, s = LEVELS[lv], self.settings
        h, w = x.shape[-2:]
        if max(h, w) <= s.tile:
            f = self.encoder(x, [name])[name]
            return self.decoders[lv](self._transform(f, lv, stats, weights, alpha, masks, (slice(None),) * 2), (h, w))
        boxes = ctl.tile_boxes(h, w, s.tile, s.overlap)
        n = 0
        s1: Tensor | float = 0.0  # the sums over the cores: tensors from the first tile on
        s2: Tensor | float = 0.0
        for ys, xs, cy, cx in boxes:  # pass 1: global content statistics from the tiles' cores
            f = self.encoder(x[..., ys, xs], [name])[name]
            sy, sx = f.shape[-2] / (ys.stop - ys.start), f.shape[-1] / (xs.stop - xs.start)
            core = f[0, :, int((cy.start - ys.start) * sy):int(round((cy.stop - ys.start) * sy)),
                     int((cx.start - xs.start) * sx):int(round((cx.stop - xs.start) * sx))]
            v = core.reshape(core.shape[0], -1).double()
            n, s1, s2 = n + v.shape[1], s1 + v.sum(1, keepdim=True), s2 + v @ v.T
        assert isinstance(s1, Tensor) and isinstance(s2, Tensor)  # a picture larger than a tile has tiles
        mu = s1 / n
        cov = (s2 - n * mu @ mu.T) / max(n - 1, 1) + 1e-5 * torch.eye(mu.shape[0], dtype=torch.float64)

        def tile_pass(tile: Tensor, box: tuple[slice, slice]) -> Tensor:  # pass 2: transform and decode
            f = self.encoder(tile, [name])[name]
            return self.decoders[lv](self._transform(f, lv, stats, weights, alpha, masks, box, (mu, cov)),
                                     tuple(tile.shape[-2:]))

        return ctl.run_tiled(tile_pass, x, s.tile, s.overlap)
