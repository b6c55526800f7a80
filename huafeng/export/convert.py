"""ONNX export with a parity check against torch on real photos, and int8 static quantization.

Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``, opset 17. It traces the
graphs in :mod:`huafeng.export.graphs` in ~1 s here; the torch.export-based exporter (torch's
default since 2.9; needs ``onnxscript``) gives the same numbers ~10-20x slower and is available as
``ExportSettings(exporter="dynamo")``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import __version__
from ..atomic import atomic_path
from ..controls import Progress, ProgressFn
from ..errors import ExportError, OutputError, SettingsError
from .models import ExportModel, load_model

Tensor = torch.Tensor
CHECK_PHOTOS = ("cat", "parrots")
CHECK_STYLE = "starry-night"     # the picture fed to the photoreal graph's style input in checks
OPSET = 17


@dataclass(frozen=True)
class ExportSettings:
    """Settings of :func:`export_onnx`; the CLI derives its defaults from these."""

    int8: bool = False                     # static int8 quantization (QDQ), calibrated on photos
    exporter: str = "torchscript"          # or "dynamo" (torch.export-based; slower here, same numbers)
    check_sizes: tuple[int, ...] = (256, 381)  # long sides of the parity photos (381: not a multiple of 4)
    min_psnr: float = 40.0                 # fp32 against torch, dB
    max_abs_fp32: float = 0.01             # fp32: a wrong border can pass the PSNR bar; not this one
    min_psnr_int8: float = 30.0            # int8 against torch, dB; below it the export is refused
    calibration_size: int = 256            # long side of the int8 calibration photos
    # the first and last N convolutions stay in fp32: on a trained per-style network 32 dB PSNR with
    # none, 39 with 1 + 1, 45 with 2 + 2, at the same speed (the outer layers are the most sensitive)
    int8_keep_fp32: int = 2
    ns_iters: int = 40                     # Newton–Schulz iterations of the photoreal graph's WCT

    def __post_init__(self) -> None:
        if self.exporter not in ("torchscript", "dynamo"):
            raise SettingsError(f"exporter must be torchscript or dynamo, got {self.exporter!r}.")
        if not self.check_sizes or min(self.check_sizes) < 16:
            raise SettingsError("check_sizes needs at least one size of 16 px or more.")
        if self.int8_keep_fp32 < 0 or self.ns_iters < 1:
            raise SettingsError("int8_keep_fp32 must be 0 or more and ns_iters at least 1.")


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise SettingsError("ONNX export needs the onnx and onnxruntime packages: pip install 'huafeng[export]'.") \
            from None


def check_inputs(model: ExportModel, sizes, style: str = CHECK_STYLE) -> list[tuple[str, dict[str, Tensor]]]:
    """Real photos (the bundled ones) at each long side in ``sizes``; the photoreal graph also gets
    a bundled painting (at the same size, for speed) as its style input."""
    from ..image import load_image
    from ..styles import resolve_style, sample_photo

    out = []
    for size in sizes:
        for photo in CHECK_PHOTOS:
            feeds = {"image": load_image(sample_photo(photo), size=size)}
            if "style" in model.inputs:
                feeds["style"] = load_image(resolve_style(style), size=size)
            out.append((f"{photo}@{size}", feeds))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two pictures in [0,1], in dB (capped at 200 for identical ones)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 200.0 if mse <= 1e-20 else min(200.0, 10 * math.log10(1.0 / mse))


def parity(model: ExportModel, onnx_path: str | os.PathLike, inputs) -> list[dict]:
    """Max abs difference and PSNR of the ONNX file against the torch reference, per input."""
    from .runtime import session

    sess = session(onnx_path)
    rows = []
    for label, feeds in inputs:
        with torch.inference_mode():
            ref = model.reference(*[feeds[k] for k in model.inputs]).numpy()
        got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
        if got.shape != ref.shape:
            raise ExportError(f"the ONNX export of {model.name} gives a {got.shape} result for {label} where "
                              f"torch gives {ref.shape}; the export is wrong and was not written.")
        rows.append({"input": label, "max_abs": round(float(np.abs(got - ref).max()), 6),
                     "psnr": round(psnr(got, ref), 2)})
    return rows


def _atanh(g, x):
    return g.op("Atanh", x)


# ONNX ops the TorchScript exporter has no mapping for, though ONNX has them (Atanh: since opset 9)
_SYMBOLICS = {"aten::atanh": _atanh}


def trace_checked(model: ExportModel, path: Path, exporter: str = "torchscript") -> None:
    """Trace ``model.graph``; when the model has fallbacks, first check the trace on random pictures
    of two sizes it was not traced at, and move on to the next fallback when it does not give torch's
    numbers (a size frozen at trace time). The photo parity check after it has the last word."""
    candidates: tuple[torch.nn.Module | Callable[[], torch.nn.Module], ...] = (model.graph, *model.fallbacks)
    if len(candidates) == 1:
        return trace(model, model.graph, path, exporter)
    from .runtime import session

    g = torch.Generator().manual_seed(0)
    probes = [torch.rand(1, 3, 33, 49, generator=g), torch.rand(1, 3, 42, 37, generator=g)]
    with torch.inference_mode():
        refs = [model.reference(x).numpy() for x in probes]
    best: tuple[float, Path | None] = (float("inf"), None)
    for i, graph in enumerate(candidates):
        graph = graph if isinstance(graph, torch.nn.Module) else graph()
        trial = path.with_name(f"trial{i}.onnx")
        trace(model, graph, trial, exporter)
        sess = session(trial)
        outs = [sess.run(None, {"image": x.numpy()})[0] for x in probes]
        err = max(float(np.abs(o - r).max()) if o.shape == r.shape else float("inf") for o, r in zip(outs, refs))
        if err < best[0]:
            best = (err, trial)
        if err < 1e-4:
            break
    if best[1] is None:  # every candidate's output had the wrong shape
        raise ExportError(f"the ONNX export of {model.name} gives a result of another shape than torch's at untraced "
                          f"sizes with each of its {len(candidates)} graphs; the export is wrong and was not written.")
    shutil.move(best[1], path)


def trace(model: ExportModel, graph: torch.nn.Module, path: str | os.PathLike, exporter: str = "torchscript") -> None:
    """Trace ``graph`` to an ONNX file with dynamic height and width (and batch, for one input)."""
    example = {"image": torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))}
    if "style" in model.inputs:
        example["style"] = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    args = tuple(example[k] for k in model.inputs)
    batch = {0: "batch"} if model.inputs == ("image",) else {}
    axes = {"image": {**batch, 2: "height", 3: "width"}, "stylized": {**batch, 2: "height", 3: "width"},
            "style": {2: "style_height", 3: "style_width"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about the size branches SizeFree makes moot
        if exporter == "dynamo":
            from torch.export import Dim

            shapes = tuple({**({0: Dim.DYNAMIC} if batch else {}), 2: Dim.DYNAMIC, 3: Dim.DYNAMIC}
                           for _ in model.inputs)
            prog = torch.onnx.export(graph, args, dynamo=True, input_names=list(model.inputs),
                                     output_names=["stylized"], dynamic_shapes=shapes, verbose=False)
            assert prog is not None  # dynamo=True always returns the program
            prog.save(str(path))
        else:
            for name, fn in _SYMBOLICS.items():
                torch.onnx.register_custom_op_symbolic(name, fn, OPSET)
            torch.onnx.export(graph, args, str(path), dynamo=False, input_names=list(model.inputs),
                              output_names=["stylized"], opset_version=OPSET,
                              dynamic_axes={k: axes[k] for k in (*model.inputs, "stylized")})


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over a list of feed dicts."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def calibration_feeds(model: ExportModel, size: int) -> list[dict[str, np.ndarray]]:
    """The bundled photos, whole and as two crops each and mirrored: eight calibration pictures."""
    feeds = []
    for _, f in check_inputs(model, (size,)):
        img = f["image"]
        h, w = img.shape[-2:]
        for view in (img, img.flip(-1), img[..., : h * 3 // 4, : w * 3 // 4], img[..., h // 4:, w // 4:]):
            feeds.append({**{k: v.numpy() for k, v in f.items()}, "image": view.contiguous().numpy()})
    return feeds


def quantize_int8(model: ExportModel, fp32: str | os.PathLike, out: str | os.PathLike, s: ExportSettings) -> dict:
    """Static int8 quantization in QDQ form: convolution weights per channel (int8), activations
    per tensor (uint8), calibrated by min/max on photos; the first and last ``s.int8_keep_fp32``
    convolutions stay in fp32 (the input and output layers are the most sensitive), and so do the
    submodules the method names in ``model.int8_keep`` (the photoreal graph's encoder). Normalisation, WCT and everything but convolutions stay in fp32."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    convs = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node if n.op_type == "Conv"]
    k = s.int8_keep_fp32
    keep = set(convs[:k] + convs[-k:]) if k else set()
    for prefix in model.int8_keep:  # the method's advice (photoreal: WCT whitens the encoder's features, which
        # divides by the square roots of small covariance eigenvalues and amplifies quantization noise)
        keep |= {c for c in convs if c.startswith(f"/{prefix}")}
    feeds = calibration_feeds(model, s.calibration_size)
    logging.disable(logging.WARNING)  # onnxruntime logs advice to the root logger; not the user's business
    try:
        quantize_static(str(fp32), str(out), _Calibration(feeds),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=sorted(keep), calibrate_method=CalibrationMethod.MinMax)
    finally:
        logging.disable(logging.NOTSET)
    return {"scheme": f"static QDQ: Conv weights int8 per channel, activations uint8 per tensor, MinMax "
                      f"calibration on {len(feeds)} photo views at {s.calibration_size} px",
            "convs_int8": len(convs) - len(keep), "convs_fp32": len(keep)}


def _metadata(model: ExportModel, report: dict) -> dict[str, str]:
    meta = {f"safetensors.{k}": v for k, v in model.metadata.items()}
    meta.update({"huafeng.version": __version__, "huafeng.kind": model.kind, "huafeng.name": model.name,
                 "huafeng.source_sha256": model.sha256(), "huafeng.inputs": json.dumps(list(model.inputs)),
                 "huafeng.io": "float32 RGB in [0,1], NCHW; output the same size as the image input",
                 "huafeng.parity": json.dumps(report["parity"]), "huafeng.precision": report["precision"]})
    if report.get("int8"):
        meta["huafeng.int8"] = json.dumps(report["int8"])
    if model.card:
        meta["model_card"] = model.card
    return meta


def _write_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    m.producer_name, m.producer_version = "huafeng", __version__
    onnx.save(m, str(path))


def output_path(out: str | os.PathLike, model: ExportModel) -> Path:
    """``out`` as a Path, checked: its folder exists and it is not one of the model's own weights files."""
    out = Path(out)
    if not out.parent.is_dir():
        raise OutputError(f"the folder {out.parent} does not exist.")
    if out.exists() and any(out.resolve() == f.resolve() for f in model.files):
        raise OutputError(f"{out} is the model's own weights file; choose another output path.")
    return out


def export_onnx(ref: str, out: str | os.PathLike, settings: ExportSettings = ExportSettings(),
                progress: ProgressFn | None = None, model: ExportModel | None = None) -> dict:
    """Export a model to ONNX, check it against torch on real photos, and write it to ``out``.

    Returns the report: ``{"path", "kind", "name", "precision", "bytes", "parity": [...], "min_psnr"}``.
    Raises :class:`ExportError` (nothing written) when the check fails: fp32 under
    ``settings.min_psnr`` dB or off by more than ``settings.max_abs_fp32`` anywhere (a broken export),
    int8 under ``settings.min_psnr_int8``.
    """
    _require_onnx()
    s = settings
    model = model or load_model(ref, s.ns_iters)
    out = output_path(out, model)
    steps = 3 if s.int8 else 2

    def report_step(stage: str, i: int) -> None:
        if progress:
            progress(Progress(stage, i, steps))

    with tempfile.TemporaryDirectory(prefix="huafeng-export-") as tmp:
        fp32 = Path(tmp) / "model.onnx"
        trace_checked(model, fp32, s.exporter)
        report_step("exported", 1)
        final, info = fp32, None
        if s.int8:
            final = Path(tmp) / "model.int8.onnx"
            info = quantize_int8(model, fp32, final, s)
            report_step("quantized", 2)
        rows = parity(model, final, check_inputs(model, s.check_sizes))
        report_step("checked", steps)
        worst = min(r["psnr"] for r in rows)
        need = s.min_psnr_int8 if s.int8 else s.min_psnr
        diff = max(r["max_abs"] for r in rows)
        if not s.int8 and diff > s.max_abs_fp32:
            raise ExportError(f"the fp32 export of {model.name} differs from torch by up to {diff:.3g} (PSNR "
                              f"{worst:.1f} dB; allowed {s.max_abs_fp32:g}), so nothing was written; please report it.")
        if worst < need:
            what = "int8 quantization" if s.int8 else "the fp32 export"
            hint = "use the fp32 export" if s.int8 else "please report it"
            raise ExportError(f"{what} of {model.name} reaches only {worst:.1f} dB PSNR against torch (needs "
                              f"{need:g} dB), so nothing was written; {hint}.")
        report = {"kind": model.kind, "name": model.name, "precision": "int8" if s.int8 else "fp32",
                  "exporter": s.exporter, "opset": OPSET, "parity": rows, "min_psnr": worst, "int8": info,
                  "settings": asdict(s)}
        _write_metadata(final, _metadata(model, report))
        with atomic_path(out) as tmp_out:  # then an atomic rename: a reader never sees half a file
            shutil.move(final, tmp_out)
    report.update(path=str(out), bytes=out.stat().st_size)
    return report
