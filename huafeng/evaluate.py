"""The evaluation harness: a methods x photos x styles grid with metrics, and cost against resolution.

``huafeng evaluate`` writes ``OUT/index.html`` (contact sheets, a metrics table, plots, training
curves), ``metrics.csv`` and ``metrics.json``; every finished cell is cached under ``OUT/cells`` so
a rerun resumes. Its rows (the methods, their onnxruntime runs, the gallery networks on their own
paintings, a reference peer) are built by :mod:`huafeng.evaluate_variants`. ``huafeng bench`` times
each method at growing sizes.
"""
from __future__ import annotations

import csv
import json
import math
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
from .evaluate_variants import Variant, available_methods, build, default_names, known_names, split_name
from .methods import get_stylizer, make_settings
from .styles import sample_photo
from .train.common import list_images, write_json

CELL_METRICS = ("ssim", "edge_ssim", "content_distance", "gram_distance", "mean_std_distance", "color_distance",
                "perceptual_distance", "seconds", "peak_rss_mb")
LOWER_IS_BETTER = {"content_distance", "gram_distance", "mean_std_distance", "color_distance",
                   "perceptual_distance", "seconds", "peak_rss_mb", "periodic_db"}
PERIODIC_MIN_CROP = 16  # smaller results (tiny test grids) get no periodic score
__all__ = ["EvaluateSettings", "available_methods", "bench", "bench_table", "evaluate"]


@dataclass(frozen=True)
class EvaluateSettings:
    content_dir: str
    style_dir: str
    out: str = "report"
    methods: tuple[str, ...] = ()   # rows (see huafeng.evaluate_variants); empty: every one available here
    photos: int = 6
    styles: int = 6
    size: int = 512
    metric_backbone: str = "lite0"
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # per-row settings, e.g. {"optimize": {"steps": 60}}
    gallery: tuple[str, ...] = ()   # fast: these gallery styles; empty: every one whose painting is bundled


def _pick(files: list[Path], n: int, seed: int) -> list[Path]:
    files = list(files)
    random.Random(seed).shuffle(files)
    return sorted(files[:n], key=lambda p: p.name)


def evaluate(s: EvaluateSettings, progress: ProgressFn | None = None) -> dict:
    """Run (or resume) the grid and write the report; returns ``{"rows", "summary", "report", "skipped",
    "photos_periodic"}``. Rows that cannot run here (the peer or onnxruntime not installed) are skipped
    with a note."""
    out = Path(s.out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(s.methods or default_names()))
    unknown = [m for m in names if m not in known_names()]
    if unknown:
        raise SettingsError(f"unknown method(s) {', '.join(unknown)}; choose from: {', '.join(known_names())}.")
    variants, skipped = [], {}
    for name in names:
        v = build(name, s.size, s.overrides, s.gallery)
        if isinstance(v, str):
            skipped[name] = v
        else:
            variants.append(v)
    photos = _pick(list_images(s.content_dir), s.photos, s.seed)
    paintings = _pick(list_images(s.style_dir), s.styles, s.seed + 1)
    contents = {p.stem: load_image(p, size=s.size) for p in photos}
    styles = {p.stem: load_image(p, size=max(s.size, 512)) for p in paintings}
    own = {v.name: {n: load_image(p, size=max(s.size, 512)) for n, p in v.paintings.items()}
           for v in variants if v.paintings is not None}  # a row's own paintings (the gallery's)
    columns = {v.name: list(styles) if v.paintings is None else list(v.paintings) for v in variants}
    rows, total, done = [], sum(len(contents) * len(c) for c in columns.values()), 0
    for v in variants:
        folder = out / "cells" / v.name
        folder.mkdir(exist_ok=True)
        pictures = own.get(v.name, styles)
        for cname, content in contents.items():
            for sname in columns[v.name]:
                rows.append(_cell(v, cname, content, sname, pictures[sname], folder, s.metric_backbone))
                done += 1
                if progress:
                    progress(Progress(f"{v.name}: {cname} x {sname}", done, total))
    summary, photos_periodic = _summary(rows, [v.name for v in variants], s.metric_backbone, out, contents)
    for v in variants:
        if v.note:
            summary[v.name]["note"] = v.note
    _write_tables(rows, summary, out, skipped, photos_periodic)
    from .report import write_report

    report = write_report(out, rows, summary, columns, contents, styles, own, asdict(s), skipped, photos_periodic)
    return {"rows": rows, "summary": summary, "report": str(report), "skipped": skipped,
            "photos_periodic": photos_periodic}


def _cell(variant: Variant, cname: str, content, sname: str, style, folder: Path, backbone: str) -> dict:
    img_path, json_path = folder / f"{cname}__{sname}.png", folder / f"{cname}__{sname}.json"
    if img_path.exists() and json_path.exists():  # resume: computed before
        return json.loads(json_path.read_text())
    variant.warm(content, style, sname)  # the first cell of a row is timed warm, as the others
    with metrics.Measure() as m:
        out = variant.run(content, style, sname)
    save_image(out, img_path, provenance=variant.record(style, sname) if variant.record else None)
    row = {"method": variant.name, "content": cname, "style": sname,
           "image": str(img_path.relative_to(folder.parents[1])),
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


def _summary(rows: list[dict], methods: list[str], backbone: str, out: Path,
             contents: dict[str, torch.Tensor]) -> tuple[dict, dict | None]:
    """Per-row means; diversity (mean pairwise distance of one photo's results across paintings); the
    periodic score (each painting's results over the photos, then the mean and the worst painting);
    for an onnxruntime row, its PSNR against the torch row's same cells. Also the photos' own score."""
    summary: dict[str, dict] = {}
    images = {(r["method"], r["content"], r["style"]): read_image(out / r["image"])[0] for r in rows}
    crop = min([256, *(min(im.shape[-2:]) for im in [*images.values(), *contents.values()])]) // 2 * 2
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {k: round(mean(r[k] for r in mine), 4) for k in CELL_METRICS}
        per_photo: dict[str, list[torch.Tensor]] = {}  # content name -> its results across styles
        per_style: dict[str, list[torch.Tensor]] = {}  # painting -> its results across photos
        for r in mine:
            per_photo.setdefault(r["content"], []).append(images[(method, r["content"], r["style"])])
            per_style.setdefault(r["style"], []).append(images[(method, r["content"], r["style"])])
        summary[method]["diversity"] = round(mean(metrics.diversity(v, backbone) for v in per_photo.values()), 4)
        summary[method]["cells"] = len(mine)
        scores = {name: _periodic(ims, crop) for name, ims in per_style.items()}
        summary[method].update(_periodic_summary(scores))
        summary[method]["per_style"] = {
            name: {**{k: round(mean(r[k] for r in mine if r["style"] == name), 4) for k in CELL_METRICS},
                   **(scores[name] or {})} for name in per_style}
        torch_row, backend = split_name(method)
        if backend != "torch" and torch_row in methods:
            same = {k: (torch_row, k[1], k[2]) for k in images if k[0] == method}  # the torch row's same cell
            pairs = [(images[k], images[t]) for k, t in same.items() if t in images]
            if pairs:
                summary[method]["psnr_vs_torch"] = round(mean(psnr(a, b) for a, b in pairs), 2)
    return summary, _periodic(list(contents.values()), crop)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two pictures in [0,1]; pictures of different sizes are compared at ``b``'s."""
    if a.shape != b.shape:
        a = F.interpolate(a, size=b.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    mse = float((a - b).pow(2).mean())
    return 10 * math.log10(1 / mse) if mse > 1e-12 else 120.0


def _periodic(images: list[torch.Tensor], crop: int) -> dict | None:
    """The periodic score of ``images`` (centre crops of ``crop`` px), or None when they are too small."""
    if crop < PERIODIC_MIN_CROP or not images:
        return None
    db, period, angle = metrics.periodic_score(images, crop)
    # a peak and its mirror image are the same pattern: the angle of its wave vector in [0, 180)
    return {"periodic_db": round(db, 2), "periodic_period_px": round(period, 2),
            "periodic_angle_deg": round(angle) % 180,
            "periodic_crop": crop, "periodic_images": len(images)}


def _periodic_summary(scores: dict[str, dict | None]) -> dict:
    """The mean score over a row's paintings, and its worst painting's score, period and angle."""
    ok = {k: v for k, v in scores.items() if v}
    if not ok:
        return {"periodic_db": None}
    worst = max(ok, key=lambda k: ok[k]["periodic_db"])
    w = ok[worst]
    return {"periodic_db": round(mean(v["periodic_db"] for v in ok.values()), 2), "periodic_max_db": w["periodic_db"],
            "periodic_period_px": w["periodic_period_px"], "periodic_angle_deg": w["periodic_angle_deg"],
            "periodic_worst": worst, "periodic_crop": w["periodic_crop"]}


def _write_tables(rows: list[dict], summary: dict, out: Path, skipped: dict, photos_periodic: dict | None) -> None:
    write_json(out / "metrics.json", {"summary": summary, "cells": rows, "skipped": skipped,
                                      "photos_periodic": photos_periodic})
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
