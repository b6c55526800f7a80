"""Runtimes of one network side by side: torch fp32, ONNX fp32 and ONNX int8 on onnxruntime (CPU), and
the ExecuTorch programs (``pte``, ``pte-int8``: XNNPACK; exported per size, as they take one size).

Each row: the runtime, the picture size, seconds per picture (best of ``repeats`` after a warm-up),
the model file's size, and the PSNR and max abs difference of its result against torch's.
The same computation runs in every runtime: for per-style networks and GAN generators the network
itself; for ``photoreal`` the whole-picture WCT graph (:class:`huafeng.export.graphs.PhotorealGraph`)
with a 512 px painting, not the method's 512 px working size + detail layer.
"""
from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..controls import Progress, ProgressFn
from ..errors import ExportError, SettingsError
from .convert import psnr
from .models import load_model
from .runtime import BACKENDS, OnnxNet, cached_export

DEFAULT_SIZES = (512, 1024)
RUNTIMES = (*BACKENDS, "pte", "pte-int8")


def default_model() -> str:
    """The first trained per-style network in the gallery, else ``photoreal``."""
    from ..methods import default_export_ref

    return default_export_ref()


def _inputs(model, size: int) -> tuple[torch.Tensor, ...]:
    from ..image import load_image
    from ..styles import resolve_style, sample_photo

    photo = load_image(sample_photo("parrots"))
    h, w = photo.shape[-2:]
    photo = photo[..., :, (w - h) // 2:(w - h) // 2 + h]  # square, as `huafeng bench`
    image = F.interpolate(photo, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    if "style" in model.inputs:
        return image, load_image(resolve_style("starry-night"), size=512)
    return (image,)


def _best_time(fn, args, repeats: int) -> tuple[float, np.ndarray]:
    out = fn(*args)  # warm-up: allocations, onnxruntime's first-run planning
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, out.numpy()


def bench_backends(ref: str | None = None, backends=BACKENDS, sizes=DEFAULT_SIZES, repeats: int = 2,
                   progress: ProgressFn | None = None) -> list[dict]:
    """Time ``ref`` in each runtime at each square size; PSNR against the torch result."""
    bad = [b for b in backends if b not in RUNTIMES]
    if bad or not backends:
        raise SettingsError(f"unknown backend(s) {', '.join(bad) or 'none'}; choose from: {', '.join(RUNTIMES)}.")
    ref = ref or default_model()
    model = load_model(ref)
    runners = {}
    for b in backends:
        if b == "torch":
            runners[b] = (model.reference, sum(f.stat().st_size for f in model.files[:1]))
        elif b.startswith("onnx"):
            with _named(b):
                path = cached_export(ref, int8=b == "onnx-int8")
            runners[b] = (OnnxNet(path), path.stat().st_size)
    rows, done = [], 0
    for size in sizes:
        args = _inputs(model, size)
        with tempfile.TemporaryDirectory(prefix="huafeng-bench-pte-") as tmp:
            for b in backends:
                if b.startswith("pte"):
                    with _named(b):
                        runners[b] = _pte_runner(ref, model, args, Path(tmp) / f"{b}.pte", b == "pte-int8")
            rows_at, done = _time_all(model, backends, runners, args, size, repeats, done, len(sizes), progress)
        rows += rows_at
    return rows


@contextmanager
def _named(runtime: str):
    """A refused export names its runtime first (``onnx-int8: ...``), so a caller can leave it out."""
    try:
        yield
    except ExportError as e:
        raise ExportError(f"{runtime}: {e}") from None


def _pte_runner(ref: str, model, args, path: Path, int8: bool):
    from .mobile import PteNet, PteSettings, export_pte

    s = PteSettings(size=tuple(args[0].shape[-2:]), style_size=tuple(args[-1].shape[-2:]), int8=int8)
    export_pte(ref, path, s, model=model)  # checked on photos at that size, like every export
    return PteNet(path, threads=torch.get_num_threads()), path.stat().st_size  # torch's thread count


def _time_all(model, backends, runners, args, size, repeats, done, n_sizes, progress):
    rows = []
    with torch.inference_mode():
        ref_out = model.reference(*args).numpy()
        for b in backends:
            seconds, out = _best_time(runners[b][0], args, repeats)
            rows.append({"model": model.name, "kind": model.kind, "backend": b, "size": size,
                         "seconds": round(seconds, 4), "model_mb": round(runners[b][1] / 2**20, 3),
                         "psnr": round(psnr(out, ref_out), 2),
                         "max_abs": float(f"{float(np.abs(out - ref_out).max()):.3g}")})
            done += 1
            if progress:
                progress(Progress(f"{b} at {size} px", done, n_sizes * len(backends)))
    return rows, done


def backends_table(rows: list[dict]) -> str:
    """A markdown table of :func:`bench_backends` rows, with the speed-up over torch at each size."""
    torch_s = {r["size"]: r["seconds"] for r in rows if r["backend"] == "torch"}
    lines = ["| runtime | size (px) | seconds | vs torch | model file (MB) | PSNR vs torch (dB) | max abs diff |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        speed = f"{torch_s[r['size']] / r['seconds']:.2f}x" if r["size"] in torch_s and r["seconds"] else ""
        p = "reference" if r["backend"] == "torch" else ("identical" if r["psnr"] >= 200 else f"{r['psnr']:.1f}")
        lines.append(f"| {r['backend']} | {r['size']} | {r['seconds']:.3f} | {speed} | {r['model_mb']:.2f} | {p} | "
                     f"{r['max_abs']:.2g} |")
    return "\n".join(lines)
