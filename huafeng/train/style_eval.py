"""Evaluation of a trained per-style network on held-out photos, against the optimisation method.

For each held-out photo (never seen in training), at ``eval_size`` px long side, both the network
and the optimisation method (Gatys et al., Lite0, its default settings) stylize it with the same
painting, and we measure

- style distance: ``metrics.gram_distance(result, painting, "vgg16")``, the mean relative Gram
  distance over VGG16's relu1_1 … relu5_1 (the painting at the same long side); lower is more of the
  painting's style. VGG16 is an independent judge: both methods minimise Gram distances on *Lite0*,
  which the optimisation method drives to ~0.001 on the very picture it is scored on, and which a
  network can game with fine stripes that look like nothing (a trial here scored 0.03 on Lite0 layers
  while VGG16 rated it further from the painting than the photo). Lite0's figures are kept as ``*_style_lite0``;
- content SSIM: ``metrics.ssim(result, photo)`` (luminance SSIM), higher keeps more of the photo.

The quality bar, relative to the optimisation method on the same photos (means over the photos):

    style distance(fast) ≤ 2 × style distance(optimize)    and    SSIM(fast) ≥ 0.9 × SSIM(optimize)

Writes ``eval.json`` (per photo and means, the bar and whether it passes) and ``eval.png`` (photo /
fast / optimize side by side). The optimisation results are cached in ``eval/`` (they depend on the
photo and painting only), so re-evaluating a resumed run costs only the network's passes.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from .. import controls as ctl
from .. import metrics
from ..image import load_image, resize_long_side, save_image
from ..sheet import contact_sheet
from .common import write_json

BAR = {"style_ratio_max": 2.0, "ssim_ratio_min": 0.9}


def _optimized(photo: torch.Tensor, painting: torch.Tensor, cache: Path, steps: int | None) -> tuple[torch.Tensor, float]:
    from ..methods.optimize import OptimizeSettings, OptimizeStylizer

    if cache.exists():
        return load_image(cache), 0.0
    t0 = time.perf_counter()
    size = max(photo.shape[-2:])
    out = OptimizeStylizer(OptimizeSettings(size=size, steps=steps)).stylize(photo, [painting])
    save_image(out, cache)  # PNG: lossless, so cached and fresh results score the same
    return out, time.perf_counter() - t0


def evaluate_style(net, painting: torch.Tensor, held: list[Path], out: Path, s,
                   progress: ctl.ProgressFn | None = None) -> dict:
    """Score ``net`` and the optimisation method on the held-out photos ``held``; see the module doc."""
    cache_dir = out / "eval"
    cache_dir.mkdir(exist_ok=True)
    style_ref = resize_long_side(painting, s.eval_size)
    rows, grid, labels = [], [], []
    for i, path in enumerate(held):
        photo = resize_long_side(load_image(path), s.eval_size)
        t0 = time.perf_counter()
        with torch.inference_mode():
            fast = net(photo)
        t_fast = time.perf_counter() - t0
        key = f"{Path(path).stem}-{s.eval_size}-{s.eval_steps or 'default'}"
        opt, t_opt = _optimized(photo, style_ref, cache_dir / f"optimize-{key}.png", s.eval_steps)
        row: dict[str, Any] = {"photo": Path(path).name, "fast_s": round(t_fast, 3), "optimize_s": round(t_opt, 1) or None}
        for tag, img in (("fast", fast), ("optimize", opt), ("photo", photo)):
            row[f"{tag}_style"] = metrics.gram_distance(img, style_ref, "vgg16")
            row[f"{tag}_style_lite0"] = metrics.gram_distance(img, style_ref)
            if tag != "photo":
                row[f"{tag}_ssim"] = metrics.ssim(img, photo)
                row[f"{tag}_content"] = metrics.content_distance(img, photo)
        rows.append(row)
        grid.append([photo, fast, opt])
        labels.append(Path(path).stem[:18])
        if progress:
            progress(ctl.Progress("evaluate (held-out photos, optimize reference)", i + 1, len(held)))
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k.endswith(("_style", "_lite0", "_ssim", "_content"))}
    style_ratio = mean["fast_style"] / max(mean["optimize_style"], 1e-12)
    ssim_ratio = mean["fast_ssim"] / max(mean["optimize_ssim"], 1e-12)
    result = {"size": s.eval_size, "photos": len(rows), "mean": mean,
              "style_ratio": style_ratio, "ssim_ratio": ssim_ratio, "bar": BAR,
              "passes": style_ratio <= BAR["style_ratio_max"] and ssim_ratio >= BAR["ssim_ratio_min"],
              "rows": rows}
    write_json(out / "eval.json", result)
    title = (f"{Path(s.painting).stem}, held-out photos: style dist. {mean['fast_style']:.3f} vs "
             f"{mean['optimize_style']:.3f} (x{style_ratio:.2f}), SSIM {mean['fast_ssim']:.2f} vs "
             f"{mean['optimize_ssim']:.2f} (x{ssim_ratio:.2f}): bar {'met' if result['passes'] else 'NOT met'}")
    style_thumb = [resize_long_side(painting, s.eval_size), None, None]
    contact_sheet([style_thumb] + grid, row_labels=["painting"] + labels, col_labels=["photo", "fast", "optimize"],
                  cell=s.eval_size, title=title).save(out / "eval.png")
    return {k: v for k, v in result.items() if k != "rows"}
