"""Arbitrary style in one pass: a network trained to paint with any painting (:mod:`.paint_net`).

The photo is recoloured to the painting's palette, encoded by the frozen Lite0 encoder to stride 8,
given the painting's feature statistics by AdaIN (Huang & Belongie 2017) and painted by a decoder
trained with a VGG16 style loss (``huafeng train arbitrary``). Nothing is trained per painting.

It paints at ``work_size`` (the scale it was trained at: the painting analysed at ``style_size``
sets the stroke size, times ``style_scale``) and brings the result to the photo's size. With
``work_size=0`` it paints at full size, in overlapping tiles above ``tile`` pixels: the content's
AdaIN statistics are gathered over every tile's core first, so the tiles agree and leave no seams.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import controls as ctl
from ..errors import SettingsError, WeightsError
from ..image import resize_long_side
from ..weights import load_file, read_metadata, shipped_path
from .graphs import ExportModel, PaintGraph, card_of
from .paint_net import (ARCHS, PaintDecoder, PaintingStats, PaintNet, pad_to_lattice, palette_map, unpad,
                        weighted_sum)

Tensor = torch.Tensor


@dataclass(frozen=True)
class ArbitrarySettings:
    """Settings of the arbitrary-style method; the CLI derives its defaults from these."""

    size: int | None = None     # long side of the result in pixels; None keeps the photo's own size
    style_size: int = 512       # long side the painting is analysed at (x style_scale): sets the stroke size
    style_scale: float = 1.0    # bigger: larger brush strokes and shapes
    weights: str = "arbitrary"  # shipped name, or a .safetensors file from `huafeng train arbitrary`
    work_size: int = 512        # paint at this long side (as trained), then resize to the photo's size;
                                # 0 paints at full size (tiled above ``tile``; smaller strokes)
    margin: int = 16            # reflected border added while painting (no rim along the edges)
    tile: int = 1024            # full-size painting: larger pictures run in overlapping tiles (bounded memory)
    overlap: int = 160          # context around each tile, in pixels

    def __post_init__(self) -> None:
        ctl.check_output_settings(self.size, self.tile, self.overlap)
        if self.style_scale <= 0:
            raise SettingsError("style_scale must be positive.")
        if self.work_size != 0 and self.work_size < 64:
            raise SettingsError(f"work_size must be 0 (full size) or at least 64 px, got {self.work_size}.")
        if self.margin < 0:
            raise SettingsError("margin must not be negative.")


def load_paint_net(ref: str = "arbitrary") -> PaintNet:
    """The painting network from a shipped name or a safetensors file (read-only, eval mode)."""
    path = shipped_path(ref) if not ref.endswith(".safetensors") else ref
    arch = read_metadata(path).get("arch")
    if arch not in ARCHS:
        raise WeightsError(f"{path} is not a huafeng arbitrary-style painting network ({', '.join(ARCHS)}).")
    tensors, _ = load_file(path)
    dec = PaintDecoder()
    try:
        dec.load_state_dict(tensors)
    except RuntimeError:
        raise WeightsError(f"{path} does not fit the painting network's decoder.") from None
    # (torch's stub lacks Module.to's memory_format keyword, which it takes)
    net = PaintNet(dec.to(memory_format=torch.channels_last), transform=ARCHS[arch])  # type: ignore[call-overload]
    return net.eval().requires_grad_(False)


class ArbitraryStylizer:
    """The painting network. ``stylize`` returns (1,3,H,W) in [0,1]."""

    method = "arbitrary"

    @staticmethod
    def export_graph(ref: str, ns_iters: int = 40) -> ExportModel | None:
        """``arbitrary`` (the shipped network) or a painting-network file (AdaIN or WCT) as one graph
        with the painting as a second input (:class:`~huafeng.methods.graphs.PaintGraph`: the roots by
        ``ns_iters`` Newton–Schulz steps); the reference, the method's own untiled ``paint`` (eigh)."""
        if ref == "arbitrary":
            path = shipped_path("arbitrary")
        elif str(ref).endswith(".safetensors") and read_metadata(ref).get("arch") in ARCHS:
            path = Path(ref)
        else:
            return None
        net = load_paint_net(str(path))
        plain = ArbitraryStylizer(ArbitrarySettings(work_size=0, tile=1 << 15), net=net)  # whole picture
        graph = PaintGraph(net, plain.settings.margin, ns_iters).eval()

        def reference(photo: Tensor, painting: Tensor) -> Tensor:
            return plain.paint(photo, net.painting_stats(painting))

        info = {**read_metadata(path), "roots": f"Newton-Schulz, {ns_iters} iterations, float64"}
        if net.transform == "wct":
            info["wct"] = info["roots"]
        # int8: the encoder stays fp32 (its features are normalised, or whitened, by their own statistics)
        return ExportModel("arbitrary", path.stem, graph, reference, ("image", "style"), (path, shipped_path("lite0")),
                           info, card_of(path), int8_keep=("encoder",))

    @staticmethod
    def export_names() -> list[str]:
        return ["arbitrary"]

    def __init__(self, settings: ArbitrarySettings = ArbitrarySettings(), net: PaintNet | None = None):
        self.settings = settings
        self.net = net if net is not None else load_paint_net(settings.weights)
        self._stats_cache = ctl.LockedLRU(8)  # painting -> its statistics (shared by concurrent calls)

    def painting_stats(self, style: Tensor) -> PaintingStats:
        """The painting's statistics at ``style_size × style_scale``; the last few are kept (a video,
        a batch or a service reuses them)."""
        s = self.settings
        style = resize_long_side(style, max(32, int(s.style_size * s.style_scale)))
        key = ctl.picture_key(style)
        return self._stats_cache.get_or_make(key, lambda: self.net.painting_stats(style))

    @torch.inference_mode()
    def stylize(self, content: Tensor, styles: list[Tensor], weights: list[float] | None = None,
                controls: ctl.Controls = ctl.Controls(), progress: ctl.ProgressFn | None = None) -> Tensor:
        s = self.settings
        weights = ctl.normalize_weights(weights or [1.0] * len(styles))
        if s.size is not None:
            content = resize_long_side(content, s.size)
        if controls.preserve_color == "histogram":
            styles = [ctl.match_color(st, content) for st in styles]
        stats = [self.painting_stats(st) for st in styles]
        reduce = bool(s.work_size) and max(content.shape[-2:]) > s.work_size
        x = resize_long_side(content, s.work_size) if reduce else content
        if controls.mask is not None and len(styles) == 2:  # foreground and background: one painting each
            outs = [self.paint(x, st, progress) for st in stats]
            outs = [self._full(o, content, reduce) for o in outs]
            return ctl.blend_results(content, outs, weights, controls)
        y = self._full(self.paint(x, weighted_sum(stats, weights), progress), content, reduce)
        return ctl.apply_after(content, y, controls, len(styles))

    @staticmethod
    def _full(y: Tensor, content: Tensor, reduce: bool) -> Tensor:
        if not reduce:
            return y
        return F.interpolate(y, size=content.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)

    def paint(self, x: Tensor, st: PaintingStats, progress: ctl.ProgressFn | None = None) -> Tensor:
        """Paint ``x`` (1,3,H,W) with one painting's statistics; tiled above ``tile`` pixels."""
        s, net = self.settings, self.net
        xr = net.recolour(x, st)   # the whole picture's palette map, pixel by pixel
        xp, pads = pad_to_lattice(xr, s.margin if min(x.shape[-2:]) > 2 * s.margin else 0)
        h, w = xp.shape[-2:]
        if max(h, w) <= s.tile:
            y = net(xp, st, recoloured=xp)
            if progress:
                progress(ctl.Progress("paint", 1, 1))
            return unpad(y, pads)
        boxes = ctl.tile_boxes(h, w, s.tile, s.overlap)
        n = 0
        s1: Tensor | float = 0.0  # the sums over the cores: tensors from the first tile on
        s2: Tensor | float = 0.0
        for i, (ys, xs, cy, cx) in enumerate(boxes):  # pass 1: the whole picture's feature statistics
            f = net.encode(xp[..., ys, xs])
            core = f[0, :, (cy.start - ys.start) // 8:(cy.stop - ys.start + 7) // 8,
                     (cx.start - xs.start) // 8:(cx.stop - xs.start + 7) // 8]
            v = core.reshape(core.shape[0], -1).double()
            n, s1 = n + v.shape[1], s1 + v.sum(1)
            s2 = s2 + (v @ v.T if net.transform == "wct" else v.pow(2).sum(1))
            if progress:
                progress(ctl.Progress("paint: statistics", i + 1, 2 * len(boxes)))
        assert isinstance(s1, Tensor) and isinstance(s2, Tensor)  # a picture larger than a tile has tiles
        mu = s1 / n
        if net.transform == "wct":  # the whole picture's mean and covariance
            stats = (mu.view(1, -1, 1), (s2 / n - torch.outer(mu, mu))[None])
        else:
            sd = ((s2 / n - mu.pow(2)).clamp_min(0) + 1e-5).sqrt()
            stats = (mu.float().view(1, -1, 1, 1), sd.float().view(1, -1, 1, 1))
        done = [len(boxes)]

        def tile_pass(tile: Tensor, box: tuple[slice, slice]) -> Tensor:  # pass 2: paint every tile
            out = net(tile, st, recoloured=tile, content_stats=stats, palette=False)
            done[0] += 1
            if progress:
                progress(ctl.Progress("paint: tiles", done[0], 2 * len(boxes)))
            return out

        # the palette map, from the whole picture's colours (one pixel-wise map for every tile)
        return unpad(palette_map(ctl.run_tiled(tile_pass, xp, s.tile, s.overlap), st), pads)
