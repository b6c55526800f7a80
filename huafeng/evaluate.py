"""The evaluation harness: a methods x photos x styles grid with metrics, and cost against resolution.

``huafeng evaluate`` writes ``OUT/index.html`` (contact sheets, a metrics table, plots, training
curves), ``metrics.csv`` and ``metrics.json``; every finished cell is cached under ``OUT/cells`` so
a rerun resumes. ``huafeng bench`` times each method at growing sizes.
"""
from __future__ import annotations

import csv
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean

import torch
import torch.nn.functional as F

from . import metrics
from .controls import Progress, ProgressFn
from .errors import SettingsError
from .image import load_image, read_image, save_image
from .methods import METHODS, get_stylizer, make_settings
from .styles import sample_photo
from .train.common import list_images, write_json

CELL_METRICS = ("ssim", "edge_ssim", "content_distance", "gram_distance", "mean_std_distance", "color_distance",
                "perceptual_distance", "seconds", "peak_rss_mb")
LOWER_IS_BETTER = {"content_distance", "gram_distance", "mean_std_distance", "color_distance",
                   "perceptual_distance", "seconds", "peak_rss_mb"}


@dataclass(frozen=True)
class EvaluateSettings:
    content_dir: str
    style_dir: str
    out: str = "report"
    methods: tuple[str, ...] = ()   # empty: every method whose weights are installed
    photos: int = 6
    styles: int = 6
    size: int = 512
    metric_backbone: str = "lite0"
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # per-method settings, e.g. {"optimize": {"steps": 60}}


def available_methods() -> list[str]:
    """Methods that can run here on any painting (their weights are installed). Per-style networks
    (``fast``) are left out: they only know the paintings they were trained on. A GAN (``gan``) is in
    when a model is installed: its style is the one domain it learned, whatever the painting."""
    out = []
    for name in METHODS:
        try:
            st = get_stylizer(name, make_settings(name))
        except Exception:  # noqa: BLE001 - a method without weights is simply not available
            continue
        if getattr(st, "takes_style_images", True) or getattr(st, "ready", False):
            out.append(name)
    return out


def _pick(files: list[Path], n: int, seed: int) -> list[Path]:
    files = list(files)
    random.Random(seed).shuffle(files)
    return sorted(files[:n], key=lambda p: p.name)


def evaluate(s: EvaluateSettings, progress: ProgressFn | None = None) -> dict:
    """Run (or resume) the grid and write the report; returns ``{"rows", "summary", "report"}``."""
    out = Path(s.out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    methods = list(s.methods) or available_methods()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SettingsError(f"unknown method(s) {', '.join(unknown)}; choose from: {', '.join(METHODS)}.")
    photos = _pick(list_images(s.content_dir), s.photos, s.seed)
    paintings = _pick(list_images(s.style_dir), s.styles, s.seed + 1)
    contents = {p.stem: load_image(p, size=s.size) for p in photos}
    styles = {p.stem: load_image(p, size=max(s.size, 512)) for p in paintings}
    rows, total, done, notes = [], len(methods) * len(contents) * len(styles), 0, {}
    for method in methods:
        stylizer = get_stylizer(method, make_settings(method, **{"size": s.size, **s.overrides.get(method, {})}))
        if getattr(stylizer, "fixed_style", False):  # e.g. gan: the style is the model's domain, not the painting
            notes[method] = (f"{method} ignores the painting: its style is the domain it learned "
                             f"({getattr(stylizer, 'domain', '') or 'see its model card'}), so each photo gets one "
                             "result, its style distances compare that result with every painting of the grid, "
                             "and its diversity is 0 by construction.")
        folder = out / "cells" / method
        folder.mkdir(exist_ok=True)
        for cname, content in contents.items():
            for sname, style in styles.items():
                rows.append(_cell(stylizer, method, cname, content, sname, style, folder, s.metric_backbone))
                done += 1
                if progress:
                    progress(Progress(f"{method}: {cname} x {sname}", done, total))
    summary = _summary(rows, methods, s.metric_backbone, out)
    for method, note in notes.items():
        summary[method]["note"] = note
    _write_tables(rows, summary, out)
    from .report import write_report

    report = write_report(out, rows, summary, methods, list(contents), list(styles), contents, styles, asdict(s))
    return {"rows": rows, "summary": summary, "report": str(report)}


def _cell(stylizer, method: str, cname: str, content, sname: str, style, folder: Path, backbone: str) -> dict:
    img_path, json_path = folder / f"{cname}__{sname}.png", folder / f"{cname}__{sname}.json"
    if img_path.exists() and json_path.exists():  # resume: computed before
        return json.loads(json_path.read_text())
    with metrics.Measure() as m:
        out = stylizer.stylize(content, [style])
    save_image(out, img_path)
    row = {"method": method, "content": cname, "style": sname, "image": str(img_path.relative_to(folder.parents[1])),
           "seconds": round(m.seconds, 3), "peak_rss_mb": round(m.peak_rss_bytes / 2**20, 1),
           **_quality(out, content, style, backbone)}
    write_json(json_path, row)
    return row


def _quality(out: torch.Tensor, content: torch.Tensor, style: torch.Tensor, backbone: str) -> dict:
    if out.shape[-2:] != content.shape[-2:]:
        content = F.interpolate(content, size=out.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    return {
        "ssim": round(metrics.ssim(out, content), 4),
        "edge_ssim": round(metrics.edge_ssim(out, content), 4),
        "content_distance": round(metrics.content_distance(out, content, backbone), 4),
        "gram_distance": round(metrics.gram_distance(out, style, backbone), 4),
        "mean_std_distance": round(metrics.mean_std_distance(out, style, backbone), 4),
        "color_distance": round(metrics.color_distance(out, style), 4),
        "perceptual_distance": round(metrics.perceptual_distance(out, content, backbone), 4),
    }


def _summary(rows: list[dict], methods: list[str], backbone: str, out: Path) -> dict:
    """Per-method means, plus diversity: mean pairwise distance of one photo's results across styles."""
    summary = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {k: round(mean(r[k] for r in mine), 4) for k in CELL_METRICS}
        per_photo: dict[str, list[torch.Tensor]] = {}  # content name -> its results across styles
        for r in mine:
            per_photo.setdefault(r["content"], []).append(read_image(out / r["image"])[0])
        summary[method]["diversity"] = round(mean(metrics.diversity(v, backbone) for v in per_photo.values()), 4)
        summary[method]["cells"] = len(mine)
    return summary


def _write_tables(rows: list[dict], summary: dict, out: Path) -> None:
    write_json(out / "metrics.json", {"summary": summary, "cells": rows})
    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["method", "content", "style", *CELL_METRICS, "image"])
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in w.fieldnames})


# ------------------------------------------------------------------------------------------ bench
BENCH_SIZES = (256, 512, 1024, 2048, 4096)
# The largest size each method is benchmarked at by default: beyond it the run is too slow or too
# large for a 2-core, 24 GB machine (the optimisation method has no tiling).
BENCH_MAX = {"optimize": 1024}


def bench(methods: list[str] | None = None, sizes=BENCH_SIZES, max_size: dict | None = None,
          progress: ProgressFn | None = None, overrides: dict | None = None) -> list[dict]:
    """Wall time and peak RSS above baseline of one warm stylize per method and size (square photo)."""
    methods = methods or available_methods()
    limits = {**BENCH_MAX, **(max_size or {})}
    photo = load_image(sample_photo("parrots"))
    h, w = photo.shape[-2:]
    photo = photo[..., :, (w - h) // 2:(w - h) // 2 + h]  # square
    style = load_image(sample_photo("parrots").parents[1] / "styles" / "starry-night.jpg")
    rows, jobs = [], [(m, z) for m in methods for z in sizes]
    for i, (method, size) in enumerate(jobs):
        if size > limits.get(method, max(sizes)):
            rows.append({"method": method, "size": size, "skipped": f"over the {limits[method]} px budget"})
            continue
        stylizer = get_stylizer(method, make_settings(method, **{"size": size, **(overrides or {}).get(method, {})}))
        content = F.interpolate(photo, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        stylizer.stylize(content[..., :64, :64], [style])  # warm up (weights loaded, allocator primed)
        with metrics.Measure() as m:
            stylizer.stylize(content, [style])
        rows.append({"method": method, "size": size, "megapixels": round(size * size / 1e6, 3),
                     "seconds": round(m.seconds, 3), "peak_rss_mb": round(m.peak_rss_bytes / 2**20, 1),
                     "peak_rss_total_mb": round(m.peak_rss_total_bytes / 2**20, 1)})
        if progress:
            progress(Progress(f"{method} at {size} px", i + 1, len(jobs)))
    return rows


def bench_table(rows: list[dict]) -> str:
    lines = ["| method | size (px) | megapixels | seconds | s / MP | peak RSS above start (MB) | peak RSS (MB) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['method']} | {r['size']} | | skipped: {r['skipped']} | | | |")
        else:
            lines.append(f"| {r['method']} | {r['size']} | {r['megapixels']} | {r['seconds']} | "
                         f"{r['seconds'] / r['megapixels']:.2f} | {r['peak_rss_mb']} | {r['peak_rss_total_mb']} |")
    return "\n".join(lines)
