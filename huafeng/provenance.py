"""What made an output: a small record written into the file's own metadata, and read back.

The record names huafeng and its version, the method, each style (a bundled or gallery *name*, else
the sha256 of the painting file or of its pixels), each model (a shipped name and the sha256 of its
weights file, or only the sha256 of a user's file), the method's settings and the shared controls.
It never holds a file path or a file name the user chose: anything that could be one is reduced to
its content's sha256, or dropped.

Where it goes, per format (what a reader of that format shows):

- PNG: ``tEXt`` chunks ``huafeng`` (the JSON, ASCII) and ``Software`` (tEXt, not iTXt: more tools show it);
- JPEG and WebP: EXIF ``UserComment`` (the JSON), ``Software`` and a one-line ``ImageDescription``;
- TIFF: the ``ImageDescription`` tag (the JSON) and ``Software``;
- GIF: the comment extension; BMP has no metadata, so it carries none;
- video: the container's ``comment`` tag (see :mod:`huafeng.video`).

Reading opens the file's header and metadata only; no pixel is decoded, and Pillow's
decompression-bomb check stays as it is.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image, PngImagePlugin

from .errors import ImageError, ImageTooLargeError
from .weights import WEIGHTS_DIR

SOFTWARE = "huafeng"
KEY = "huafeng"                 # the PNG text key
MAX_STYLES = 16                 # a blend of more styles records the first 16 (and how many there were)
MAX_READ = 64 * 1024            # a record longer than this is not ours
_USER_COMMENT, _IMAGE_DESCRIPTION, _SOFTWARE, _EXIF_IFD = 0x9286, 0x010E, 0x0131, 0x8769
_ASCII = b"ASCII\0\0\0"         # EXIF UserComment's character-code prefix
_READ_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")


@dataclass(frozen=True)
class Provenance:
    """What made an output. ``styles``: ``{"name" | "sha256", "weight"}``; ``models``:
    ``{"name" (shipped only), "sha256"}``; ``settings``: the method's settings dataclass, paths reduced."""

    method: str
    styles: tuple[dict, ...] = ()
    models: tuple[dict, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    controls: Mapping[str, Any] = field(default_factory=dict)
    version: str = ""
    software: str = SOFTWARE

    def to_dict(self) -> dict:
        return {"software": self.software, "version": self.version, "method": self.method,
                "styles": [dict(s) for s in self.styles], "models": [dict(m) for m in self.models],
                "settings": dict(self.settings), "controls": dict(self.controls)}

    def to_json(self) -> str:
        """Compact, ASCII-only JSON (EXIF and TIFF text tags are ASCII)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=True, sort_keys=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Provenance:
        """Parse a record; raises ValueError when ``text`` is not one of huafeng's."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "strict")
        if len(text) > MAX_READ:
            raise ValueError("too long")
        d = json.loads(text)
        if not isinstance(d, dict) or d.get("software") != SOFTWARE or not isinstance(d.get("method"), str):
            raise ValueError("not a huafeng record")
        lists = {k: d.get(k) or [] for k in ("styles", "models")}
        maps = {k: d.get(k) or {} for k in ("settings", "controls")}
        if not all(isinstance(v, list) and all(isinstance(x, dict) for x in v) for v in lists.values()) \
                or not all(isinstance(v, dict) for v in maps.values()):
            raise ValueError("malformed huafeng record")
        return cls(method=d["method"], styles=tuple(lists["styles"]), models=tuple(lists["models"]),
                   settings=maps["settings"], controls=maps["controls"], version=str(d.get("version", "")))

    def summary(self) -> str:
        """One line for a human: ``huafeng 0.1.0, fast: starry-night``."""
        names = [s.get("name") or f"sha256:{str(s.get('sha256', ''))[:12]}" for s in self.styles]
        return f"{self.software} {self.version}, {self.method}" + (f": {', '.join(names)}" if names else "")


# ------------------------------------------------------------------------------------ building
def describe(method: str, styles: Any = (), settings: Any = None, *, strength: float = 1.0,
             preserve_color: str | bool = "none", mask: Any = None) -> Provenance:
    """The record of one call, from what was passed to :func:`huafeng.stylize_image` (or to a
    stylizer): the method (``"auto"`` is resolved as there), the style spec in any accepted form
    (names, files, ``"file:0.7"``, images, tensors, ``(ref, weight)`` pairs, a mapping), the method's
    settings (its dataclass, or a dict of overrides) and the controls. Hashes of shipped weights and
    of files are computed once per file and kept."""
    from . import __version__
    from . import controls as ctl
    from .api import _style_items
    from .methods import METHODS, choose_method, make_settings

    items = [] if styles is None or (isinstance(styles, (list, tuple)) and not styles) else _style_items(styles)
    method = choose_method(method, [r for r, _ in items])
    if settings is None or isinstance(settings, Mapping):
        settings = make_settings(method, **dict(settings or {}))
    takes_images = getattr(METHODS[method][1], "takes_style_images", True)
    weights = ctl.normalize_weights([w for _, w in items]) if items else []
    style_rows = [{**_style_ref(ref, takes_images), "weight": round(w, 4)} for (ref, _), w in zip(items, weights)]
    if len(style_rows) > MAX_STYLES:  # metadata stays small (a JPEG's EXIF block holds 64 kB at most)
        style_rows = style_rows[:MAX_STYLES] + [{"more": len(style_rows) - MAX_STYLES}]
    if preserve_color is True or preserve_color is False or preserve_color is None:
        preserve_color = "luminance" if preserve_color else "none"
    controls = {"strength": float(strength), "preserve_color": str(preserve_color),
                "mask": _content_ref(mask) if mask is not None else None}
    return Provenance(method=method, styles=tuple(style_rows),
                      models=tuple(_models(method, settings, [r for r, _ in items])),
                      settings=_clean(asdict(settings) if is_dataclass(settings) and not isinstance(settings, type)
                                     else dict(settings)),
                      controls=controls, version=__version__)


@lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file's bytes; kept per (path, size, mtime), so a shipped file is hashed once."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    p = os.path.realpath(os.fspath(path))
    st = os.stat(p)
    return _file_sha256(p, st.st_size, st.st_mtime_ns)


def _content_ref(ref: Any) -> dict:
    """A picture named by content alone: the sha256 of its file, or of its 8-bit RGB pixels."""
    if isinstance(ref, (str, os.PathLike)):
        return {"sha256": file_sha256(ref)}
    import numpy as np
    import torch

    if isinstance(ref, Image.Image):
        data = np.asarray(ref.convert("RGB")).tobytes()
    elif isinstance(ref, torch.Tensor):
        data = (ref.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy().tobytes()
    else:
        data = np.ascontiguousarray(np.asarray(ref)).tobytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "of": "pixels"}


def _style_ref(ref: Any, takes_images: bool) -> dict:
    from .methods.fast import gallery as fast_gallery
    from .methods.gan import gallery as gan_gallery
    from .styles import BUNDLED, resolve_style

    if isinstance(ref, (str, os.PathLike)):
        s = str(ref)
        if (s in BUNDLED) if takes_images else (s in fast_gallery() or s in gan_gallery()):
            return {"name": s}
        return {"sha256": file_sha256(resolve_style(s) if takes_images else Path(s).expanduser())}
    return _content_ref(ref)


def _weights_ref(path: Path) -> dict:
    path = Path(path)
    if path.resolve().parent == WEIGHTS_DIR:  # shipped: its name is ours, not the user's
        return {"name": path.stem, "sha256": file_sha256(path)}
    return {"sha256": file_sha256(path)}


def _models(method: str, settings: Any, refs: Sequence[Any]) -> list[dict]:
    """The weights files a method runs, from its settings (and, for fast and gan, the style names).
    A plain table of five methods; a method not listed records none."""
    from .methods import fast, gan
    from .weights import shipped_path

    def named(ref: str) -> Path:  # the photoreal/arbitrary rule: a .safetensors file, else a shipped name
        return Path(ref).expanduser() if ref.endswith(".safetensors") else shipped_path(ref)

    if method == "optimize":
        paths = [shipped_path(settings.backbone)]
    elif method in ("photoreal", "arbitrary"):  # both run the frozen lite0 encoder before their decoder
        paths = [shipped_path("lite0"), named(settings.weights)]
    elif method == "fast":
        paths = [fast.gallery().get(str(r)) or Path(str(r)).expanduser() for r in refs]
    elif method == "gan":
        names = [str(r) for r in refs if isinstance(r, (str, os.PathLike))]
        paths = [gan._resolve(r) for r in ([settings.model] if settings.model or not names else names)]
    else:
        paths = []
    return [_weights_ref(p) for p in paths]


def _clean(value: Any) -> Any:
    """Settings as JSON, with anything that could be a path replaced by its file's sha256 (or None)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        if not (any(c in value for c in "/\\") or os.path.splitext(value)[1] or value.startswith("~")):
            return value  # a name (lite0, lbfgs, photoreal, a shipped model): never read as a file
        path = os.path.expanduser(value)
        return "sha256:" + file_sha256(path) if os.path.isfile(path) else None
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


# ------------------------------------------------------------------------------------- writing
def pillow_options(fmt: str, record: Provenance | None) -> dict:
    """Keyword arguments for ``PIL.Image.save`` in ``fmt`` that embed ``record`` (none for BMP)."""
    if record is None:
        return {}
    text = record.to_json()
    software = f"{SOFTWARE} {record.version}".strip()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", software)
        info.add_text(KEY, text)  # ASCII, so tEXt; before the image data: found without decoding pixels
        return {"pnginfo": info}
    if fmt in ("JPEG", "WEBP"):
        exif = Image.Exif()
        exif[_SOFTWARE] = software
        exif[_IMAGE_DESCRIPTION] = f"Stylized with {record.summary()}"
        exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = _ASCII + text.encode("ascii")
        return {"exif": exif.tobytes()}
    if fmt == "TIFF":
        return {"tiffinfo": {_IMAGE_DESCRIPTION: text, _SOFTWARE: software}}
    if fmt == "GIF":
        return {"comment": text.encode("ascii")}
    return {}


# ------------------------------------------------------------------------------------- reading
def _candidates(im: Image.Image) -> list:
    found = [im.info.get(KEY), im.info.get("comment")]  # PNG text chunk (before the image data), GIF comment
    try:
        exif = im.getexif()  # JPEG/WebP: the EXIF block; TIFF: its own tags
        found += [exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT), exif.get(_IMAGE_DESCRIPTION)]
    except Exception:  # a broken EXIF block carries no record
        pass
    return found


def _parse(value: Any) -> Provenance | None:
    if isinstance(value, bytes) and value[:8] in (_ASCII, b"UNICODE\0", b"\0" * 8):
        value = value[8:]
    try:
        return Provenance.from_json(value.rstrip(b"\0") if isinstance(value, bytes) else value)
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
        return None


def read_provenance(src: str | os.PathLike) -> Provenance:
    """The record in an image file (PNG, JPEG, WebP, TIFF, GIF) or a video file; raises
    :class:`ImageError` (one line) when the file is unreadable or carries none."""
    from .image import DEFAULT_MAX_PIXELS, _pillow_guard
    from .video import VIDEO_EXTENSIONS, container_comment

    path = Path(os.fspath(src))
    name = path.name or str(path)
    if not path.is_file():
        raise ImageError(f"{name} does not exist or is not a file; check the path.")
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        values = [container_comment(path)]
    else:
        try:
            # The library's bomb guard, as for any read (huafeng's limit, one open at a time). Only the header and
            # metadata are read, never pixels: the warning between 1x and 2x the limit is moot, the error past 2x stays.
            with open(path, "rb") as fp, _pillow_guard(DEFAULT_MAX_PIXELS):
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # inside the guard's catch_warnings
                with Image.open(fp, formats=_READ_FORMATS) as im:
                    values = _candidates(im)
        except Image.DecompressionBombError:
            raise ImageTooLargeError(f"{name} is too large to open safely; it was not read.") from None
        except OSError as exc:  # unidentified, truncated header, permission
            detail = getattr(exc, "strerror", None) or "not a supported image"
            raise ImageError(f"Cannot read {name} ({detail}); pass an image or video file huafeng wrote.") from None
    for value in values:
        record = _parse(value) if value else None
        if record is not None:
            return record
    raise ImageError(f"{name} carries no huafeng record (written with --no-metadata, by another program, "
                     "or its metadata was stripped).")
