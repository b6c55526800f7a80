"""What every method shares: strength, colour preservation, style blends and region masks.

These act on images (B, 3, H, W) in [0,1], before or after a method runs, so every method gets
the same control surface. Methods may also use them inside (the optimisation method weights its
style loss by the region masks).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F

from .errors import SettingsError

Tensor = torch.Tensor
COLOR_MODES = ("none", "luminance", "histogram")


@dataclass(frozen=True)
class Progress:
    """One progress report, for the CLI's bar and the service's progress field alike."""

    stage: str
    step: int
    total: int
    loss: float | None = None

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 1.0


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class Controls:
    """The controls every method shares.

    strength: 0 gives the content back, 1 the full stylization (blended in image space).
    preserve_color: "none"; "luminance" (transfer luminance only, keep the content's chroma:
        Gatys et al. 2017); or "histogram" (recolour the style to the content's colour mean and
        covariance before stylizing).
    mask: (1, 1, H, W) in [0,1]. With one style, white is stylized and black keeps the content;
        with two styles, white gets the first and black the second.
    """

    strength: float = 1.0
    preserve_color: str = "none"
    mask: Tensor | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise SettingsError(f"strength must be between 0 and 1, got {self.strength}.")
        if self.preserve_color not in COLOR_MODES:
            raise SettingsError(f"preserve_color must be one of {', '.join(COLOR_MODES)}, got {self.preserve_color!r}.")


BACKENDS = ("torch", "onnx", "onnx-int8")


def check_output_settings(size: int | None, tile: int | None = None, overlap: int | None = None,
                          backend: str | None = None) -> None:
    """The checks every method's settings share: result size, tiling and runtime (one-line errors)."""
    if size is not None and not 16 <= size <= 16384:
        raise SettingsError(f"size must be between 16 and 16384 pixels, got {size}.")
    if tile is not None and (tile < 64 or not 0 <= (overlap or 0) < tile // 2):
        raise SettingsError("tile must be at least 64 px and overlap under half a tile.")
    if backend is not None and backend not in BACKENDS:
        raise SettingsError(f"backend must be {', '.join(BACKENDS)}, got {backend!r}.")


def normalize_weights(weights: Sequence[float]) -> list[float]:
    """Blend weights, made to sum to one. Raises on negative or all-zero weights."""
    if not weights:
        raise SettingsError("at least one style is needed.")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise SettingsError(f"style weights must be non-negative and not all zero, got {list(weights)}.")
    total = float(sum(weights))
    return [w / total for w in weights]


# BT.601 RGB <-> YUV (analog form): Y is luminance, U and V carry the colour.
_RGB2YUV = torch.tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])


def rgb_to_yuv(img: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", _RGB2YUV.to(img), img)


def yuv_to_rgb(img: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB2YUV.double()).to(img), img)


def preserve_luminance(stylized: Tensor, content: Tensor) -> Tensor:
    """The stylized luminance with the content's colour (Gatys et al. 2017, luminance-only transfer).

    The stylized luminance is first matched to the content's mean and spread, as in the paper,
    so the picture keeps its overall brightness.
    """
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(content, size=stylized.shape[-2:], mode="bilinear", align_corners=False)
    ys, yc = rgb_to_yuv(stylized), rgb_to_yuv(content)
    y = ys[:, :1]
    mu_s, sd_s = y.mean((2, 3), keepdim=True), y.std((2, 3), keepdim=True).clamp_min(1e-5)
    mu_c, sd_c = yc[:, :1].mean((2, 3), keepdim=True), yc[:, :1].std((2, 3), keepdim=True)
    y = (y - mu_s) / sd_s * sd_c + mu_c
    return yuv_to_rgb(torch.cat([y, yc[:, 1:]], 1)).clamp(0, 1)


def pixel_stats(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    r"""Mean (B,3,1) and covariance (B,3,3) of each picture's RGB pixels, in float64 (its palette)."""
    p = x.double().reshape(x.shape[0], 3, -1)
    mu = p.mean(-1, keepdim=True)
    d = p - mu
    return mu, d @ d.transpose(1, 2) / p.shape[-1] + eps * torch.eye(3, dtype=torch.float64, device=x.device)


def recolour(src: Tensor, mu_r: Tensor, cov_r: Tensor, eps: float = 1e-5) -> Tensor:
    r"""Recolour ``src`` (B,3,H,W) to the palette ``(mu_r, cov_r)`` (from :func:`pixel_stats`), a linear map:

    .. math:: x' = \Sigma_r^{1/2}\,\Sigma_s^{-1/2}\,(x-\mu_s) + \mu_r
    """
    def sqrtm(c: Tensor, inv: bool = False) -> Tensor:
        e, v = torch.linalg.eigh(c)
        e = e.clamp_min(eps).pow(-0.5 if inv else 0.5)
        return v @ torch.diag_embed(e) @ v.transpose(1, 2)

    mu_s, c_s = pixel_stats(src, eps)
    t = sqrtm(cov_r.double()) @ sqrtm(c_s, inv=True)
    p = src.double().reshape(src.shape[0], 3, -1)
    out = t @ (p - mu_s) + mu_r.double()
    return out.reshape(src.shape).to(src.dtype).clamp(0, 1)


def match_color(src: Tensor, ref: Tensor, eps: float = 1e-5) -> Tensor:
    """Recolour ``src`` so its pixels have the mean and covariance of ``ref``'s (:func:`recolour`)."""
    return recolour(src, *pixel_stats(ref, eps), eps=eps)


def blend_strength(content: Tensor, stylized: Tensor, strength: float) -> Tensor:
    """Linear blend in image space: ``content + strength * (stylized - content)``."""
    if strength >= 1.0:
        return stylized
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(content, size=stylized.shape[-2:], mode="bilinear", align_corners=False)
    return (content + strength * (stylized - content)).clamp(0, 1)


def region_masks(mask: Tensor | None, n_styles: int, size: tuple[int, ...]) -> list[Tensor] | None:
    """One weight map (1, 1, H, W) per style from the user's mask, resized to ``size`` (H, W).

    One style: [mask] (the rest keeps the content). Two styles: [mask, 1 - mask].
    """
    if mask is None:
        return None
    if n_styles > 2:
        raise SettingsError(f"a mask works with one or two styles, got {n_styles}; blend the others by weight instead.")
    m = mask.mean(1, keepdim=True) if mask.shape[1] != 1 else mask
    m = F.interpolate(m, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    return [m] if n_styles == 1 else [m, 1 - m]


def apply_after(content: Tensor, stylized: Tensor, controls: Controls, n_styles: int = 1) -> Tensor:
    """The controls that act on the finished picture: colour, the one-style mask, and strength."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(content, size=stylized.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
    out = stylized
    if controls.preserve_color == "luminance":
        out = preserve_luminance(out, content)
    masks = region_masks(controls.mask, n_styles, tuple(out.shape[-2:]))
    if masks is not None and n_styles == 1:
        out = masks[0] * out + (1 - masks[0]) * content
    return blend_strength(content, out, controls.strength)


def blend_results(content: Tensor, outs: list[Tensor], weights: Sequence[float], controls: Controls) -> Tensor:
    """Combine one result per style (methods that run a network per style): with a mask and two
    styles, white gets the first and black the second; otherwise a weighted sum. Then the controls
    that act on the finished picture (:func:`apply_after`)."""
    masks = region_masks(controls.mask, len(outs), tuple(content.shape[-2:]))
    if masks is not None and len(outs) == 2:
        out = masks[0] * outs[0] + masks[1] * outs[1]
    else:
        out = cast(Tensor, sum(w * o for w, o in zip(weights, outs)))  # one or more results: a tensor, not 0
    return apply_after(content, out, controls, len(outs))


# ---------------------------------------------------------------------------------------- tiling
def tile_boxes(h: int, w: int, tile: int, overlap: int, align: int = 8) -> list[tuple[slice, slice, slice, slice]]:
    """Overlapping tiles covering an (h, w) picture: ``(ys, xs, core_ys, core_xs)`` per tile.

    Tile origins are multiples of ``align`` (so encoder feature grids line up across tiles). The
    *core* slices partition the picture (each pixel in exactly one core); the tile adds up to
    ``overlap`` pixels of context around its core.
    """
    def spans(n: int) -> list[tuple[int, int, int, int]]:
        if n <= tile:
            return [(0, n, 0, n)]
        step = max(align, (tile - overlap) // align * align)
        starts = sorted(set(list(range(0, n - tile, step)) + [(n - tile) // align * align]))
        ends = [min(st + tile, n) for st in starts[:-1]] + [n]  # the last tile reaches the edge
        cuts = [0] + [(starts[i + 1] + ends[i]) // 2 for i in range(len(starts) - 1)] + [n]  # mid-overlap
        return [(starts[i], ends[i], cuts[i], cuts[i + 1]) for i in range(len(starts))]

    return [(slice(y0, y1), slice(x0, x1), slice(cy0, cy1), slice(cx0, cx1))
            for y0, y1, cy0, cy1 in spans(h) for x0, x1, cx0, cx1 in spans(w)]


def feather(h: int, w: int, ys: slice, xs: slice, full: tuple[int, int], ramp: int) -> Tensor:
    """Blend weights (1, 1, h, w) for a tile: linear ramps of ``ramp`` px at edges shared with neighbours."""
    def axis(n: int, start: int, stop: int, total: int) -> Tensor:
        wgt = torch.ones(n)
        r = min(ramp, n // 2)
        if r > 0 and start > 0:
            wgt[:r] = torch.linspace(1.0 / (r + 1), 1.0, r)
        if r > 0 and stop < total:
            wgt[-r:] = torch.minimum(wgt[-r:], torch.linspace(1.0, 1.0 / (r + 1), r))
        return wgt

    return (axis(h, ys.start, ys.stop, full[0])[:, None] * axis(w, xs.start, xs.stop, full[1])[None, :])[None, None]


def run_tiled(fn: Callable[[Tensor, tuple[slice, slice]], Tensor], x: Tensor, tile: int, overlap: int,
              align: int = 8) -> Tensor:
    """Apply ``fn(tile, (ys, xs))`` to overlapping tiles of ``x`` and feather the results together.

    ``fn`` maps a (1, C, h, w) tile to a (1, C, h, w) result; bounded memory: one tile at a time.
    """
    h, w = x.shape[-2:]
    out, wsum = torch.zeros_like(x), torch.zeros_like(x[:, :1])
    for ys, xs, _, _ in tile_boxes(h, w, tile, overlap, align):
        wgt = feather(ys.stop - ys.start, xs.stop - xs.start, ys, xs, (h, w), overlap)
        out[..., ys, xs] += fn(x[..., ys, xs], (ys, xs)) * wgt
        wsum[..., ys, xs] += wgt
    return out / wsum


# ---------------------------------------------------------------------------------------- caches
class LockedLRU:
    """A small cache shared by concurrent calls: at most ``size`` entries, least recently used evicted,
    every access under one lock. ``make`` runs outside the lock (two callers may both compute a value
    the first time; the values are equal and one is kept)."""

    def __init__(self, size: int) -> None:
        self.size, self._lock = size, threading.Lock()
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            value = self._items.setdefault(key, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def picture_key(img: Tensor) -> tuple:
    """A cache key for a picture's content: its shape and a 128-bit hash of its pixels."""
    import hashlib

    return tuple(img.shape), hashlib.blake2b(img.cpu().numpy().tobytes(), digest_size=16).digest()
