"""A standalone in-browser build: the studio's browser page, one exported network and onnxruntime-web,
in one folder that any static file server can serve (nothing is fetched from elsewhere).

onnxruntime-web comes from the npm registry at build time (``tools/vendor_ort_web.sh``) into
``huafeng/service/static/vendor/``; it is never committed and never fetched at run time.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..controls import ProgressFn
from ..errors import SettingsError
from .convert import ExportSettings, export_onnx
from .models import load_model

STATIC = Path(__file__).resolve().parents[1] / "service" / "static"
VENDOR = STATIC / "vendor"
VENDOR_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
PAGE_FILES = ("browser.js", "browser.css", "studio.css")


def vendored() -> list[Path]:
    """The vendored onnxruntime-web files; a one-line error when they are missing."""
    missing = [f for f in VENDOR_FILES if not (VENDOR / f).is_file()]
    if missing:
        raise SettingsError(f"onnxruntime-web is not vendored in this install ({', '.join(missing)} missing); "
                            "run tools/vendor_ort_web.sh, which fetches it from the npm registry.")
    return [VENDOR / f for f in VENDOR_FILES] + [p for p in (VENDOR / "NOTICE", VENDOR / "VERSION") if p.is_file()]


def standalone_page(html: str) -> str:
    """The studio page with its absolute paths turned relative to the build folder."""
    return (html.replace('data-models="/v1/models"', 'data-models="models.json"')
                .replace('data-vendor="/static/vendor/"', 'data-vendor="vendor/"')
                .replace('"/static/', '"'))


def build_web(ref: str, out_dir: str | os.PathLike, settings: ExportSettings = ExportSettings(),
              progress: ProgressFn | None = None) -> dict:
    """Write ``index.html``, its script and styles, ``model.onnx`` (checked), ``models.json`` and
    ``vendor/`` to ``out_dir``. Serve the folder with any static server, e.g.
    ``python -m http.server -d DIR``, and open it: the page stylizes photos on the user's machine.
    Returns the export report with ``"web"``: the folder."""
    runtime = vendored()  # fail before the export's work
    model = load_model(ref, settings.ns_iters)
    if model.inputs != ("image",):
        raise SettingsError(f"the browser page runs per-style networks and GAN generators; {ref!r} is the "
                            f"{model.kind} model, which takes a painting as a second input.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SettingsError(f"{out} is a file; --web needs a folder.")
    (out / "vendor").mkdir(parents=True, exist_ok=True)
    report = export_onnx(ref, out / "model.onnx", settings, progress=progress, model=model)
    for f in runtime:
        shutil.copyfile(f, out / "vendor" / f.name)
    for name in PAGE_FILES:
        shutil.copyfile(STATIC / name, out / name)
    (out / "index.html").write_text(standalone_page((STATIC / "browser.html").read_text(encoding="utf-8")),
                                    encoding="utf-8")
    models = [{"name": model.name, "kind": model.kind, "url": "model.onnx"}]
    (out / "models.json").write_text(json.dumps(models, indent=1), encoding="utf-8")
    report["web"] = str(out)
    return report
