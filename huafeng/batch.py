"""Batch stylization of a folder tree: ``huafeng batch IN_DIR OUT_DIR --style ...``.

The output tree mirrors the input tree. Every item is recorded in ``OUT_DIR/manifest.jsonl`` as
done, failed (with its one-line error) or skipped; a rerun skips what is done, so a run killed at
any point (even ``kill -9``) resumes and loses nothing: writes are atomic, and an item is marked
done only after its file is in place. Local runs use a process pool with one model per worker;
``--ray [ADDRESS]`` runs on Ray actors, one model each, on a local Ray started for the call or on a
cluster. Files travel to the actors as bytes and the encoded results come back as bytes, so a
cluster needs no shared filesystem; the driver alone writes the outputs and the manifest.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

from .controls import Progress, ProgressFn
from .errors import HuafengError, SettingsError
from .image import IMAGE_EXTENSIONS

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class BatchSettings:
    in_dir: str
    out_dir: str
    styles: tuple[str, ...]
    method: str = "optimize"
    workers: int = 1                    # local processes, or Ray actors (0 with Ray: one per cluster CPU)
    ray: str | None = None              # None: local pool; "local": a Ray started for the call; else an address
    ext: str | None = None              # output extension; None keeps each input's
    strength: float = 1.0
    preserve_color: str = "none"
    settings: dict = field(default_factory=dict)  # the method's settings (size, steps, ...)
    metadata: bool = True               # write the provenance record into every output (huafeng.provenance)


def plan(s: BatchSettings) -> list[tuple[Path, Path]]:
    """(input, output) pairs for every image under ``in_dir``, outputs mirrored under ``out_dir``."""
    src, dst = Path(s.in_dir).resolve(), Path(s.out_dir).resolve()
    if not src.is_dir():
        raise SettingsError(f"{s.in_dir} is not a folder.")
    if dst == src or src in dst.parents:
        raise SettingsError("the output folder must not be the input folder or inside it.")
    pairs = []
    for p in sorted(src.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            rel = p.relative_to(src)
            ext = s.ext or (p.suffix if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")
                            else ".png")
            pairs.append((p, dst / rel.with_suffix(ext)))
    return pairs


def read_manifest(out_dir: str | os.PathLike) -> dict[str, dict]:
    """The last record per input (later lines win); tolerates a torn last line from a kill."""
    path = Path(out_dir) / MANIFEST
    records: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[r["input"]] = r
    return records


_worker_state: dict = {}


def _init_worker(method: str, settings: dict, threads: int) -> None:
    import torch

    from .methods import get_stylizer, make_settings

    torch.set_num_threads(threads)
    _worker_state["stylizer"] = get_stylizer(method, make_settings(method, **settings))


def _one(src: str, dst: str, styles: tuple[str, ...], method: str, strength: float, preserve_color: str,
         settings: dict, metadata: bool = True) -> dict:
    """Stylize one file; never raises for bad input (the error becomes the record)."""
    from .api import stylize_image
    from .image import save_image
    from .provenance import describe

    t0 = time.time()
    try:
        rgb, alpha = stylize_image(src, list(styles), method, strength=strength, preserve_color=preserve_color,
                                   **settings)
        record = describe(method, list(styles), settings, strength=strength,
                          preserve_color=preserve_color) if metadata else None
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        save_image(rgb, dst, alpha=alpha, protect=[src], provenance=record)
        return {"input": src, "output": dst, "status": "done", "seconds": round(time.time() - t0, 2)}
    except HuafengError as e:
        return {"input": src, "output": dst, "status": "failed", "error": str(e)}


def _eta(seconds: float) -> str:
    m, sec = divmod(int(seconds + 0.5), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"


def run_batch(s: BatchSettings, progress: ProgressFn | None = None) -> dict:
    """Run (or resume) a batch; returns counts ``{"done", "failed", "skipped", "items_per_s"}``."""
    from .methods import choose_method, make_settings

    s = replace(s, method=choose_method(s.method, list(s.styles)))  # "auto": the library's one choice
    make_settings(s.method, **s.settings)  # bad settings fail before any work
    out = Path(s.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = plan(s)
    seen = read_manifest(out)
    todo = [(a, b) for a, b in pairs if not (seen.get(str(a), {}).get("status") == "done" and b.exists())]
    counts = {"done": 0, "failed": 0, "skipped": len(pairs) - len(todo)}
    t0 = time.time()
    with open(out / MANIFEST, "a") as log:
        def record(r: dict) -> None:  # called only once the output file is in place (or the item failed)
            log.write(json.dumps(r) + "\n")
            log.flush()
            os.fsync(log.fileno())
            counts[r["status"]] += 1
            if progress:
                n = counts["done"] + counts["failed"]
                rate = n / max(time.time() - t0, 1e-6)
                progress(Progress(f"{rate:.2f} items/s, ETA {_eta((len(todo) - n) / max(rate, 1e-9))}",
                                  n, len(todo)))

        args = (tuple(s.styles), s.method, s.strength, s.preserve_color, s.settings, s.metadata)
        if s.ray is not None:
            from .batch_ray import run_on_ray

            run_on_ray(s, todo, record)
        elif s.workers <= 1:
            _init_worker(s.method, s.settings, max(1, os.cpu_count() or 1))
            for a, b in todo:
                record(_one(str(a), str(b), *args))
        else:
            threads = max(1, (os.cpu_count() or 1) // s.workers)
            with ProcessPoolExecutor(s.workers, initializer=_init_worker,
                                     initargs=(s.method, s.settings, threads)) as pool:
                futures = [pool.submit(_one, str(a), str(b), *args) for a, b in todo]
                for f in as_completed(futures):
                    record(f.result())
    return {**counts, "items_per_s": round((counts["done"] + counts["failed"]) / max(time.time() - t0, 1e-6), 3)}
