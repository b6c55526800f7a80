"""A generated corpus of odd and broken image files for the reader (nothing is downloaded).

``make_corpus(folder)`` writes ~45 small files (well under 1 MB in all) and returns
``[(path, "ok" | "error"), ...]``: "ok" files must load, "error" files must raise an ImageError.
File names are stable, so tests can check pixel facts of particular files.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _raw_png(width: int, height: int, rows: bytes, depth: int = 8, colour: int = 0) -> bytes:
    """A PNG built by hand: its header may claim any size, whatever the data holds."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(rows, 9)) + _png_chunk(b"IEND", b""))


def _tiff_rgb16(arr: np.ndarray) -> bytes:
    """Uncompressed little-endian 16-bit RGB TIFF (Pillow cannot write one)."""
    h, w, _ = arr.shape
    data = arr.astype("<u2").tobytes()
    n_entries = 10
    bps_at = 8 + 2 + n_entries * 12 + 4
    data_at = bps_at + 6

    def short(tag, value):
        return struct.pack("<HHIHH", tag, 3, 1, value, 0)

    def long_(tag, value, count=1, kind=4):
        return struct.pack("<HHII", tag, kind, count, value)

    entries = [short(256, w), short(257, h), long_(258, bps_at, 3, 3), short(259, 1), short(262, 2),
               long_(273, data_at), short(277, 3), short(278, h), long_(279, len(data)), short(284, 1)]
    return (b"II*\x00" + struct.pack("<IH", 8, n_entries) + b"".join(entries) + b"\x00" * 4
            + struct.pack("<HHH", 16, 16, 16) + data)


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _gradient(w: int, h: int) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    return Image.fromarray(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8))


def _ok_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    files["cmyk.jpg"] = _encode(Image.new("CMYK", (16, 12), (0, 255, 255, 0)), "JPEG", quality=95)  # red
    g16 = np.full((6, 8), 300, np.uint16)
    g16[0, 0], g16[0, 1], g16[0, 2] = 65535, 32768, 1000
    files["gray16.png"] = _encode(Image.fromarray(g16), "PNG")
    rgb16 = np.full((3, 4, 3), 1000, np.uint16)
    rgb16[0, 0], rgb16[0, 1] = 65535, 32768
    files["rgb16.tif"] = _tiff_rgb16(rgb16)
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([*RED, *GREEN, *BLUE] + [0] * 759)
    pal.paste(1, (4, 0, 8, 8))
    files["palette_trns.png"] = _encode(pal, "PNG", transparency=0)  # left half transparent
    files["palette.png"] = _encode(pal, "PNG")
    files["la.png"] = _encode(Image.new("LA", (5, 4), (100, 50)), "PNG")
    files["rgba.png"] = _encode(Image.new("RGBA", (6, 5), (10, 200, 30, 128)), "PNG")
    files["gray.jpg"] = _encode(Image.new("L", (9, 7), 128), "JPEG")
    files["onebit.bmp"] = _encode(Image.new("1", (13, 5), 1), "BMP")
    files["onebit.png"] = _encode(Image.new("1", (13, 5), 1), "PNG")
    rot = Image.new("RGB", (16, 8), RED)  # landscape: left red, right blue; orientation 6 = rotate 90 CW
    rot.paste(BLUE, (8, 0, 16, 8))
    exif = Image.Exif()
    exif[0x0112] = 6
    files["exif_rot6.jpg"] = _encode(rot, "JPEG", quality=95, exif=exif)
    frames = [Image.new("RGB", (10, 6), c) for c in (RED, GREEN, BLUE)]
    files["anim.gif"] = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    files["lossy.webp"] = _encode(_gradient(20, 12), "WEBP", quality=80)
    files["lossless_alpha.webp"] = _encode(Image.new("RGBA", (7, 9), (0, 0, 255, 64)), "WEBP", lossless=True)
    files["rgb.tif"] = _encode(_gradient(12, 10), "TIFF", compression="tiff_deflate")
    files["multipage.tif"] = _encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    files["rgb.bmp"] = _encode(_gradient(11, 7), "BMP")
    files["tall_1x5000.png"] = _encode(Image.new("RGB", (1, 5000), GREEN), "PNG")
    files["wide_5000x1.png"] = _encode(Image.new("RGB", (5000, 1), BLUE), "PNG")
    files["one_1x1.png"] = _encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG")
    fl = np.linspace(0.0, 1.0, 30, dtype=np.float32).reshape(5, 6)
    files["float_F.tif"] = _encode(Image.fromarray(fl), "TIFF")
    files["gray_trns.png"] = _encode(Image.new("L", (4, 4), 7), "PNG", transparency=7)
    files["progressive.jpg"] = _encode(_gradient(24, 16), "JPEG", progressive=True)
    jpeg = _encode(Image.new("RGB", (8, 4), (200, 10, 10)), "JPEG")
    junk = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05" + bytes(range(40))
    files["bad_exif.jpg"] = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk + jpeg[2:]
    files["junk_icc.jpg"] = _encode(Image.new("RGB", (8, 8), (50, 100, 150)), "JPEG", icc_profile=b"not an icc profile")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    files["srgb_icc.jpg"] = _encode(Image.new("RGB", (8, 8), (50, 100, 150)), "JPEG", icc_profile=srgb)
    files["png_named.jpg"] = _encode(Image.new("RGB", (3, 2), GREEN), "PNG")  # content wins over extension
    files["UPPER.JPG"] = _encode(Image.new("RGB", (5, 3), BLUE), "JPEG")
    files["写真 photo.png"] = _encode(Image.new("RGB", (4, 3), RED), "PNG")
    return files


def _error_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    rng = np.random.default_rng(1)
    jpeg = _encode(_noise(64, 64), "JPEG", quality=90)
    png = _encode(_gradient(64, 64), "PNG")
    files["empty.jpg"] = b""
    files["text.jpg"] = b"This is not a photo, just some notes.\n" * 3
    files["random.png"] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    files["page.png"] = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>nope</body></html>"
    files["truncated.jpg"] = jpeg[: len(jpeg) * 6 // 10]
    files["truncated.png"] = png[: len(png) // 2]
    idat = png.index(b"IDAT") + 4
    files["bad_idat.png"] = png[: idat + 20] + b"\xff" * 40 + png[idat + 60:]  # corrupt deflate stream
    ihdr_crc = 8 + 8 + 13
    files["bad_crc.png"] = png[:ihdr_crc] + b"\xde\xad\xbe\xef" + png[ihdr_crc + 4:]
    # 30000x30000 1-bit image whose IDAT holds 10 rows: must be refused from the header alone.
    files["bomb.png"] = _raw_png(30000, 30000, b"\x00" * (1 + 3750) * 10, depth=1)
    gif = bytearray(_encode(Image.new("P", (1, 1), 0), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen of 4.3 gigapixels
    files["bomb.gif"] = bytes(gif)
    files["zero_width.png"] = _raw_png(0, 10, b"\x00" * 10)
    files["signature_only.png"] = b"\x89PNG\r\n\x1a\n"
    files["jpeg_magic_garbage.jpg"] = b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
    gif_noise = _encode(_noise(64, 64, 2).convert("P"), "GIF")
    files["truncated.gif"] = gif_noise[: len(gif_noise) // 2]
    files["truncated.webp"] = _encode(_noise(32, 32), "WEBP")[:150]
    files["unsupported.tga"] = _encode(Image.new("RGB", (4, 4), RED), "TGA")
    return files


def make_corpus(folder: Path) -> list[tuple[Path, str]]:
    """Write the corpus into ``folder``; return [(path, "ok" | "error")]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[Path, str]] = []
    for expected, files in (("ok", _ok_files()), ("error", _error_files())):
        for name, data in files.items():
            (folder / name).write_bytes(data)
            cases.append((folder / name, expected))
    (folder / "a folder.png").mkdir(exist_ok=True)
    cases.append((folder / "a folder.png", "error"))
    cases.append((folder / "missing.jpg", "error"))  # never written
    return cases
