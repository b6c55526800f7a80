"""Pixels in and out: files, bytes, PIL images and arrays <-> float32 tensors [B,3,H,W] in [0,1].

Every conversion between files and tensors happens here. Reading applies EXIF orientation, converts
any colour mode (palette, CMYK, 16-bit, float, LAB, embedded ICC profile) to sRGB, splits off alpha,
and bounds the pixel count *before* decoding. Saving is atomic and never overwrites an input.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import threading
import warnings
from pathlib import Path
from typing import Any, Iterable, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError, features

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without littlecms: embedded profiles are ignored, LAB is refused
    ImageCms = None  # type: ignore[assignment]  # (mypy cannot type a module that may be None)

from huafeng.atomic import atomic_open
from huafeng.errors import ImageError, ImageTooLargeError, OutputError, SettingsError
from huafeng.provenance import Provenance, pillow_options

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray, torch.Tensor]

DEFAULT_MAX_PIXELS = 100_000_000
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
# Only these decoders ever see untrusted bytes (the JPEG one also reads the MPO files of cameras).
_READ_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                  ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF"}
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# Pillow's bomb guard is a module global: we set it to the caller's limit, one decode at a time.
_PIL_LIMIT_LOCK = threading.Lock()


# ----------------------------------------------------------------------------------------- reading
def read_image(src: Source, *, max_pixels: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read ``src`` as (rgb [1,3,H,W], alpha [1,1,H,W] or None), float32 in [0,1]; raises ImageError."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if limit < 1:
        raise SettingsError(f"max_pixels must be a positive number of pixels, got {max_pixels}.")
    if isinstance(src, torch.Tensor):
        return _checked(*_from_tensor(src), "the tensor", limit)
    if isinstance(src, np.ndarray):
        return _checked(*_from_array(src, "the array"), "the array", limit)
    if isinstance(src, Image.Image):  # oriented by its EXIF tag, like a file
        with _pillow_guard(limit):
            pil = _decode(lambda: src, "the PIL image", limit)
        return _convert(pil, "the PIL image")
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if not data:
            raise ImageError("The image data is empty (0 bytes); pass the bytes of an image file.")
        buf = io.BytesIO(data)
        with _pillow_guard(limit):
            pil = _decode(lambda: Image.open(buf, formats=_READ_FORMATS), "the image data", limit, buf)
        return _convert(pil, "the image data")
    if isinstance(src, (str, os.PathLike)):
        return _read_path(os.fspath(src), limit)
    raise ImageError(f"Cannot read an image from a {type(src).__name__}; pass a path, bytes, a PIL image, "
                     "a numpy array or a tensor.")


def load_image(src: Source, *, size: int | None = None, max_pixels: int | None = None) -> torch.Tensor:
    """Read ``src`` as rgb [1,3,H,W]; with ``size``, resize so the long side is ``size`` pixels."""
    rgb, _ = read_image(src, max_pixels=max_pixels)
    return rgb if size is None else resize_long_side(rgb, size)


def _read_path(path: str, limit: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    name = os.path.basename(path.rstrip("/\\")) or path
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(f"{name} is a folder, not an image file; pass an image file.")
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            raise ImageError(f"{name} is not a regular file; pass an image file.")
        if info.st_size == 0:
            raise ImageError(f"{name} is empty (0 bytes); re-export or re-download it.")
        with open(path, "rb") as fp:  # read-only: the source is never modified
            with _pillow_guard(limit):
                pil = _decode(lambda: Image.open(fp, formats=_READ_FORMATS), name, limit, fp)
    except FileNotFoundError:
        raise ImageError(f"{name} does not exist; check the path ({path}).") from None
    except PermissionError:
        raise ImageError(f"Cannot read {name}: permission denied; check the file's permissions.") from None
    except OSError as exc:  # anything else the OS says about opening the file (decoding errors are ImageError)
        raise ImageError(f"Cannot read {name}: {exc.strerror or exc}; check the file.") from None
    return _convert(pil, name)  # fully decoded: the file is closed already


@contextlib.contextmanager
def _pillow_guard(limit: int):
    """Pillow's bomb check at our limit for one decode (decodes are serialised); restores the global."""
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Corrupt EXIF", category=UserWarning)
        old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _pixels(n: int) -> str:
    return f"{n / 1e6:.4g} MP" if n >= 1_000_000 else f"{n:,} pixels"


def _decode(opener, name: str, limit: int, fp=None) -> Image.Image:
    """Open, bound, fully decode and orient one image (inside _pillow_guard); failures -> ImageError."""
    try:
        # While opening, Pillow only hard-fails past 2x the limit; our check below names the size.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        pil = opener()
        w, h = pil.size
        if w * h > limit:  # before any pixel is decoded
            raise ImageTooLargeError(f"{name} is {w}x{h} ({_pixels(w * h)}), over the {_pixels(limit)} limit; "
                                     "pass a larger max_pixels if you trust this file.")
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # frames and tiles while decoding
        if w < 1 or h < 1:
            raise ImageError(f"{name} has zero width or height ({w}x{h}); it is not a usable image.")
        pil.load()  # full decode here, so truncated files fail here
        with contextlib.suppress(Exception):  # a broken EXIF block only costs the orientation
            if pil.getexif().get(0x0112, 1) != 1:  # exif_transpose copies even when there is nothing to do
                pil = ImageOps.exif_transpose(pil)
        return pil
    except ImageError:
        raise
    except MemoryError:
        raise ImageTooLargeError(f"Not enough memory to decode {name}; use a smaller image.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"has {_pixels(int(found.group(1)))}" if found else "is too large"
        raise ImageTooLargeError(f"{name} {size}, over the {_pixels(limit)} limit; "
                                 "pass a larger max_pixels if you trust this file.") from None
    except UnidentifiedImageError:
        head = b""
        if fp is not None:
            fp.seek(0)
            head = fp.read(512)
        looks = _sniff(head)
        if looks:  # Pillow folds header errors into "cannot identify"
            raise ImageError(f"{name} looks like a {looks} file but its header is corrupt or truncated; "
                             "re-export or re-download it.") from None
        text = head.strip() and all(32 <= c < 127 or c in b"\t\r\n" for c in head)
        hint = " (it looks like a text or HTML file, perhaps a failed download)" if text else ""
        raise ImageError(f"{name} is not a supported image{hint}; use JPEG, PNG, WebP, TIFF, BMP or GIF.") from None
    except Exception as exc:  # OSError, ValueError, SyntaxError, struct.error, EOFError... from decoders
        detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        kind = "truncated" if "truncated" in detail.lower() else "corrupt"
        raise ImageError(f"{name} is {kind} and cannot be decoded ({detail}); re-export or re-download it.") from None


def _sniff(head: bytes) -> str | None:
    """The supported format whose signature starts ``head``, if any."""
    for magic, fmt in ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG", "PNG"), (b"GIF8", "GIF"), (b"II*\x00", "TIFF"),
                       (b"MM\x00*", "TIFF"), (b"BM", "BMP")):
        if head.startswith(magic) and (fmt != "BMP" or head[6:10] == b"\0\0\0\0"):
            return fmt
    return "WebP" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" else None


def from_pil(pil: Image.Image) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Convert a decoded PIL image of any mode to (rgb [1,3,H,W], alpha [1,1,H,W] or None) in sRGB."""
    return _convert(pil, "the image")


def _convert(pil: Image.Image, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    mode = pil.mode
    if mode in _SIXTEEN_BIT:  # 16-bit grey (PNG/TIFF): full range is 65535, not 255
        return _from_array(np.clip(np.asarray(pil, dtype=np.float32) / 65535.0, 0.0, 1.0), "the image")
    if mode == "F":  # float images carry no range; accept [0,1], else guess 8- or 16-bit scale
        arr = np.nan_to_num(np.asarray(pil, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        peak = float(arr.max(initial=0.0))
        scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0 if peak <= 65535.0 else peak
        return _from_array(np.clip(arr / scale, 0.0, 1.0), "the image")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in pil.info
    try:
        if mode == "LAB":  # Pillow's own LAB -> RGB convert() is not colorimetric
            lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
            # Pillow's stub says Image | None; None is only for inPlace=True
            pil = ImageCms.applyTransform(pil, ImageCms.buildTransform(lab, srgb, "LAB", "RGB"))  # type: ignore[assignment]
        elif mode == "La":
            pil = pil.convert("LA")
        pil = _icc_to_srgb(pil)
        arr = np.asarray(pil.convert("RGBA" if has_alpha else "RGB"))
    except Exception as exc:  # ValueError, OSError, PyCMSError: a mode Pillow cannot convert
        raise ImageError(f"Cannot convert {name} from colour mode {mode} to RGB ({exc}); "
                         "convert it to RGB first.") from None
    return _from_array(arr, "the image")


def _icc_to_srgb(pil: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (Display P3, Adobe RGB, CMYK...) so pixels end up in sRGB."""
    icc = pil.info.get("icc_profile")
    if not icc or ImageCms is None or pil.mode not in ("RGB", "RGBA", "CMYK"):
        return pil
    try:
        out = "RGBA" if pil.mode == "RGBA" else "RGB"
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        # Pillow's stub says Image | None; None is only for inPlace=True
        return ImageCms.profileToProfile(pil, src, ImageCms.createProfile("sRGB"), outputMode=out)  # type: ignore[return-value]
    except Exception:  # a broken or unusual profile: fall back to the plain conversion
        return pil


def _from_array(arr: np.ndarray, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """HxW, HxWx1, HxWx3 or HxWx4 array (uint8, uint16, bool or float in [0,1]) -> tensors."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"Expected {name} to be HxW, HxWx3 or HxWx4, got shape {tuple(arr.shape)}; "
                         "pass a single image.")
    if arr.dtype == np.uint8 or arr.dtype == np.bool_:
        scale = 255.0 if arr.dtype == np.uint8 else 1.0
    elif arr.dtype.kind == "u" and arr.dtype.itemsize == 2:  # either byte order
        scale = 65535.0
    elif arr.dtype.kind == "f":
        scale = None
    else:
        raise ImageError(f"Cannot read {name} of dtype {arr.dtype}; use uint8, uint16 or float in [0,1].")
    # One float32 copy, already in (C, H, W) order: a 100 MP photo is 1.2 GB as float32.
    x = torch.from_numpy(np.array(arr.transpose(2, 0, 1), dtype=np.float32, order="C", copy=True))[None]
    return _split(_checked_range(x, name) if scale is None else x.div_(scale))


def _from_tensor(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = t.detach().unsqueeze(0) if t.ndim == 3 else t.detach()
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3, 4):
        raise ImageError(f"Expected an image tensor of shape [3,H,W], [1,3,H,W] or [1,4,H,W], "
                         f"got {list(t.shape)}; pass one image at a time.")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif not x.is_floating_point():
        raise ImageError(f"Expected a float image tensor in [0,1], got dtype {t.dtype}; convert it with .float().")
    return _split(_checked_range(x.float(), "the tensor"))


def _checked_range(x: torch.Tensor, name: str) -> torch.Tensor:
    """Reject NaN/inf and values clearly off the [0,1] scale (0..255); clamp small overshoots."""
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ImageError(f"{name} contains NaN or infinite values; pass finite values in [0,1].")
    if x.numel() and (float(x.min()) < -0.1 or float(x.max()) > 1.1):
        raise ImageError(f"{name} has values from {float(x.min()):g} to {float(x.max()):g}, not in [0,1]; "
                         "divide 8-bit values by 255.")
    return x.clamp(0.0, 1.0)


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(1, C, H, W) with C in 1, 3, 4 -> rgb (1, 3, H, W), alpha (1, 1, H, W) or None."""
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous(), None
    return x[:, :3].contiguous(), (x[:, 3:].contiguous() if x.shape[1] == 4 else None)


def _checked(rgb: torch.Tensor, alpha: torch.Tensor | None, name: str, limit: int):
    h, w = rgb.shape[-2:]
    if h < 1 or w < 1:
        raise ImageError(f"{name} has zero width or height ({w}x{h}); pass a real image.")
    if h * w > limit:
        raise ImageTooLargeError(f"{name} is {w}x{h} ({_pixels(h * w)}), over the {_pixels(limit)} limit; "
                                 "pass a larger max_pixels if you trust it.")
    return rgb, alpha


# ------------------------------------------------------------------------------------- conversions
def resize_long_side(img: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bicubic resize of [B,C,H,W] so max(H, W) == size, keeping aspect; clamped to [0,1]."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise SettingsError(f"size must be a positive whole number of pixels, got {size!r}.")
    h, w = img.shape[-2:]
    scale = size / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    new = (size, new[1]) if h >= w else (new[0], size)
    if new == (h, w):
        return img
    out = F.interpolate(img.float(), size=new, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def to_pil(img: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """First image of a [B,3,H,W] (or [3,H,W]) batch as an 8-bit RGB, or RGBA with ``alpha``."""
    x = img[0] if img.ndim == 4 else img
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ImageError(f"Expected an image tensor [B,3,H,W] or [3,H,W], got {list(img.shape)}.")
    x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
    channels = [x]
    if alpha is not None:
        a = alpha.reshape(-1, *alpha.shape[-2:])[:1]  # (1, h, w)
        if a.shape[-2:] != x.shape[-2:]:
            a = F.interpolate(a[None].float(), size=tuple(x.shape[-2:]), mode="bilinear",
                              align_corners=False, antialias=True)[0]
        channels.append(a)
    arr = torch.cat([c.detach().to("cpu", torch.float32) for c in channels])
    arr = (arr.nan_to_num(0.0).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return Image.fromarray(np.ascontiguousarray(arr.permute(1, 2, 0).numpy()))


# ----------------------------------------------------------------------------------------- writing
def check_output(path: str | os.PathLike, protect: Iterable[str | os.PathLike] = ()) -> str:
    """Raise OutputError unless ``path`` can be written (known extension, existing folder, not a
    folder, not one of the inputs in ``protect``); returns the Pillow format. Cheap: call it before
    long work so a bad ``-o`` fails at once."""
    path = Path(os.fspath(path))
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"Cannot save {path.name}: unknown extension {path.suffix or '(none)'}; "
                          f"use one of {', '.join(sorted(_WRITE_FORMATS))}.")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"Cannot save {path.name}: the folder {folder} does not exist; create it or choose another -o.")
    if path.is_dir():
        raise OutputError(f"Cannot save to {path}: it is a folder; give a file name with an extension.")
    if isinstance(protect, (str, bytes, os.PathLike)):
        protect = [protect]
    for src in protect:
        if _same_file(path, Path(os.fsdecode(src))):
            raise OutputError(f"Refusing to overwrite the input {path.name}; choose another -o.")
    return fmt


def save_image(img: torch.Tensor, path: str | os.PathLike, *, alpha: torch.Tensor | None = None,
               protect: Iterable[str | os.PathLike] = (), quality: int = 95, png_level: int = 6,
               provenance: Provenance | None = None) -> Path:
    """Write the first image of ``img`` atomically to ``path``; the format follows the extension.

    ``png_level`` is PNG's zlib level (1 is fast, for scratch frames; 6 is Pillow's default).
    ``provenance`` (from :func:`huafeng.provenance.describe`) goes into the format's own metadata:
    PNG text, EXIF for JPEG and WebP, TIFF tags, a GIF comment (BMP holds none)."""
    path = Path(os.fspath(path))
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise SettingsError(f"quality must be a whole number from 1 to 100, got {quality!r}.")
    fmt = check_output(path, protect)
    pil = to_pil(img, alpha if fmt in _ALPHA_FORMATS else None)
    per_format: dict[str, dict[str, Any]] = {
        "JPEG": {"quality": quality, "subsampling": 0 if quality >= 90 else -1},  # 0 = 4:4:4 chroma
        "WEBP": {"quality": quality},
        "PNG": {"compress_level": png_level},
        "TIFF": {"compression": "tiff_lzw"} if features.check_codec("libtiff") else {}}
    options = per_format.get(fmt, {})
    try:
        with atomic_open(path, "wb") as fh:  # temp file beside it, fsync, rename, fsync the folder
            pil.save(fh, format=fmt, **options, **pillow_options(fmt, provenance))
    except (OSError, ValueError) as exc:
        raise OutputError(f"Cannot write {path.name}: {getattr(exc, 'strerror', None) or exc}; "
                          "check the folder's permissions and free space.") from None
    return path


def default_output_path(input_path: str | os.PathLike, *, suffix: str = "_stylized", ext: str | None = None) -> Path:
    """``photo.jpg`` -> ``photo_stylized.jpg`` beside it (then ``-1``, ``-2``...), never an existing file."""
    src = Path(os.fspath(input_path))
    if ext is not None:
        ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
        if ext not in _WRITE_FORMATS:
            raise OutputError(f"Unknown output extension {ext}; use one of {', '.join(sorted(_WRITE_FORMATS))}.")
    else:  # keep JPEG/PNG/WebP as they are; GIF, BMP, TIFF and anything else become PNG
        keep = src.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
        ext = src.suffix if keep else ".png"
    candidate, n = src.with_name(f"{src.stem}{suffix}{ext}"), 0
    while os.path.lexists(candidate) or candidate == src:
        n += 1
        candidate = src.with_name(f"{src.stem}{suffix}-{n}{ext}")
    return candidate


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError, ValueError):
        return os.path.abspath(a) == os.path.abspath(b)


