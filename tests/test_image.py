"""Tests for huafeng.image: the generated corpus, pixel facts, size limits, saving, naming, inputs."""
from __future__ import annotations

import hashlib
import io
import os
import stat
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import make_corpus  # noqa: E402

from huafeng.errors import HuafengError, ImageError, ImageTooLargeError, OutputError, SettingsError  # noqa: E402
from huafeng.image import (  # noqa: E402
    DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, default_output_path, from_pil, load_image, read_image,
    resize_long_side, save_image, to_pil,
)

with tempfile.TemporaryDirectory() as _d:
    CASES = [(p.name, expected) for p, expected in make_corpus(Path(_d))]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    make_corpus(folder)
    return folder


def _fingerprint(path: Path):
    return (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) if path.is_file() else None


def _well_formed(rgb, alpha):
    assert rgb.dtype == torch.float32 and rgb.ndim == 4 and rgb.shape[:2] == (1, 3)
    assert rgb.shape[2] >= 1 and rgb.shape[3] >= 1
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    if alpha is not None:
        assert alpha.dtype == torch.float32 and alpha.shape == (1, 1, *rgb.shape[2:])
        assert alpha.min() >= 0 and alpha.max() <= 1


def _one_line_error(exc_info, kind=ImageError):
    assert isinstance(exc_info.value, kind)
    text = str(exc_info.value)
    assert text and "\n" not in text
    return text


def _grid(shape, seed=0):
    """Random values already on the 1/255 grid, so an 8-bit round trip is exact."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g).float() / 255


def _smooth(h=24, w=32):
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([x, y, (x + y) / 2])[None]


# ------------------------------------------------------------------------------------------ corpus
def test_corpus_is_big_and_small():
    assert len(CASES) >= 28 and {e for _, e in CASES} == {"ok", "error"}


@pytest.mark.parametrize("name,expected", CASES, ids=[n for n, _ in CASES])
def test_corpus_file(corpus, name, expected):
    path = corpus / name
    before = _fingerprint(path)
    if expected == "ok":
        _well_formed(*read_image(path))
        _well_formed(*read_image(str(path)))
    else:
        with pytest.raises(ImageError) as info:
            read_image(path)
        assert path.name in _one_line_error(info)  # names the file
    assert _fingerprint(path) == before


def test_corpus_total_size(corpus):
    assert sum(p.stat().st_size for p in corpus.iterdir() if p.is_file()) < 2_000_000


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(pytest.raises(ImageError, read_image, fifo)),
                              daemon=True)
    reader.start()
    reader.join(5)
    assert outcome and "regular file" in str(outcome[0].value)


def test_extensions():
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"} <= IMAGE_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)


# ---------------------------------------------------------------------------------------- limits
def test_bomb_refused_from_header(corpus):
    filters = list(warnings.filters)
    for name in ("bomb.png", "bomb.gif"):
        with pytest.raises(ImageTooLargeError) as info:
            read_image(corpus / name)
        text = _one_line_error(info, ImageTooLargeError)
        assert name in text and "100 MP" in text and "max_pixels" in text
    assert Image.MAX_IMAGE_PIXELS == 89_478_485 and DEFAULT_MAX_PIXELS == 100_000_000
    assert warnings.filters == filters


def test_small_explicit_limit(corpus):
    with pytest.raises(ImageTooLargeError) as info:
        read_image(corpus / "rgb.tif", max_pixels=100)  # 12x10
    assert "12x10 (120 pixels), over the 100 pixels limit" in _one_line_error(info, ImageTooLargeError)
    with pytest.raises(ImageTooLargeError) as info:
        read_image(corpus / "rgb.tif", max_pixels=50)  # past Pillow's own hard stop at 2x the limit
    assert "120 pixels" in _one_line_error(info, ImageTooLargeError)
    for src in (Image.new("RGB", (12, 10)), np.zeros((10, 12, 3), np.uint8), torch.zeros(3, 10, 12)):
        with pytest.raises(ImageTooLargeError):
            read_image(src, max_pixels=100)
    _well_formed(*read_image(corpus / "rgb.tif", max_pixels=120))
    with pytest.raises(SettingsError):
        read_image(corpus / "rgb.tif", max_pixels=0)


def test_limit_above_pillows_own(tmp_path, monkeypatch):
    # Shrink Pillow's guard so a 100x100 image counts as a "bomb" to Pillow itself (cheap stand-in
    # for a 150 MP photo): an explicit, larger max_pixels must still let it through.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100), (9, 9, 9)).save(path)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    assert read_image(path, max_pixels=20_000)[0].shape == (1, 3, 100, 100)
    assert read_image(path)[0].shape == (1, 3, 100, 100)  # default 100 MP limit, not Pillow's
    assert read_image(path.read_bytes(), max_pixels=10_000)[0].shape == (1, 3, 100, 100)
    with pytest.raises(ImageTooLargeError):
        read_image(path, max_pixels=9_999)
    with pytest.raises(ImageTooLargeError):
        read_image(path, max_pixels=4_000)  # also past Pillow's hard error at 2x
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_limit_is_thread_safe(corpus):
    errors, results = [], []

    def work(limit):
        try:
            for _ in range(5):
                try:
                    results.append(read_image(corpus / "rgb.tif", max_pixels=limit)[0].shape[-1])
                except ImageTooLargeError:
                    results.append(-limit)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(limit,)) for limit in (100, 10_000, 50, 10**9)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and sorted(set(results)) == [-100, -50, 12]
    assert Image.MAX_IMAGE_PIXELS == 89_478_485


# ------------------------------------------------------------------------------------ pixel facts
def test_exif_orientation_swaps_size(corpus):
    rgb, _ = read_image(corpus / "exif_rot6.jpg")  # stored 16x8, orientation 6 (90 degrees clockwise)
    assert rgb.shape == (1, 3, 16, 8)
    top, bottom = rgb[0, :, 2, 4], rgb[0, :, 13, 4]  # the left (red) half turns into the top
    assert top[0] > 0.9 and top[2] < 0.1 and bottom[2] > 0.9 and bottom[0] < 0.1
    with Image.open(corpus / "exif_rot6.jpg") as pil:
        assert read_image(pil)[0].shape == (1, 3, 16, 8)


def test_sixteen_bit_scaling(corpus):
    rgb, alpha = read_image(corpus / "gray16.png")
    assert alpha is None and torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2])
    assert rgb[0, 0, 0, 0] == 1.0
    assert rgb[0, 0, 0, 1] == pytest.approx(0.5, abs=1e-4)
    assert rgb[0, 0, 0, 2] == pytest.approx(1000 / 65535, abs=1e-5)  # not clipped at 255
    assert rgb[0, 0, 3, 3] == pytest.approx(300 / 65535, abs=1e-5)
    rgb, _ = read_image(corpus / "rgb16.tif")  # Pillow keeps the high byte of 16-bit RGB
    assert rgb[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert rgb[0, :, 0, 1] == pytest.approx(torch.full((3,), 0.5), abs=0.01)
    assert rgb[0, :, 1, 1] == pytest.approx(torch.full((3,), 1000 / 65535), abs=0.01)


def test_colour_modes(corpus):
    red = read_image(corpus / "cmyk.jpg")[0][0, :, 6, 8]
    assert red[0] > 0.9 and red[1] < 0.1 and red[2] < 0.1
    rgb, alpha = read_image(corpus / "palette_trns.png")
    assert alpha is not None and alpha[0, 0, :, :4].max() == 0 and alpha[0, 0, :, 4:].min() == 1
    assert rgb[0, :, 0, 7].tolist() == [0.0, 1.0, 0.0]
    assert read_image(corpus / "palette.png")[1] is None
    rgb, alpha = read_image(corpus / "la.png")
    assert rgb[0, :, 0, 0] == pytest.approx(torch.full((3,), 100 / 255)) and alpha.max() == pytest.approx(50 / 255)
    assert read_image(corpus / "gray_trns.png")[1].max() == 0  # tRNS on a grey image is alpha too
    assert read_image(corpus / "lossless_alpha.webp")[1].min() == pytest.approx(64 / 255)
    assert read_image(corpus / "rgba.png")[1].min() == pytest.approx(128 / 255)
    for name in ("gray.jpg", "onebit.bmp", "cmyk.jpg", "rgb.tif", "srgb_icc.jpg", "UPPER.JPG"):
        assert read_image(corpus / name)[1] is None, name
    gif, _ = read_image(corpus / "anim.gif")  # first frame of three (red, green, blue)
    assert gif[0, 0].min() == 1.0 and gif[0, 1:].max() == 0.0
    fl, _ = read_image(corpus / "float_F.tif")
    assert fl[0, 0, 0, 5] == pytest.approx(5 / 29, abs=1e-6)
    assert read_image(corpus / "srgb_icc.jpg")[0].sub(read_image(corpus / "junk_icc.jpg")[0]).abs().max() < 0.02


# ------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif", ".bmp", ".gif"])
def test_round_trip(tmp_path, ext):
    exact = ext in (".png", ".tif", ".bmp")
    img = _grid((1, 3, 24, 32)) if exact else _smooth()
    alpha = _grid((1, 1, 24, 32), seed=1)
    out = save_image(img, tmp_path / f"out{ext}", alpha=alpha)
    assert out == tmp_path / f"out{ext}" and out.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    rgb, back = read_image(out)
    assert rgb.shape == img.shape
    if exact:
        assert torch.equal(rgb, img)
    elif ext != ".gif":
        assert (rgb - img).abs().mean() < 0.02
    if ext in (".png", ".tif", ".webp"):
        assert back is not None and torch.equal(back, alpha)  # WebP keeps alpha losslessly
    else:
        assert back is None


@pytest.mark.parametrize("pil,rgb0,alpha0", [
    (Image.new("LAB", (3, 2), (128, 128, 128)), (0.47, 0.47, 0.47), None),  # mid grey, via a real LAB->sRGB
    (Image.frombytes("I;16B", (2, 1), b"\xff\xff\x80\x00"), (1.0, 1.0, 1.0), None),
    (Image.fromarray(np.full((2, 2), 51.0, np.float32)), (0.2, 0.2, 0.2), None),  # float on a 0..255 scale
    (Image.new("La", (2, 2), (255, 51)), (1.0, 1.0, 1.0), 0.2),
    (Image.new("PA", (2, 2), (0, 51)), (0.0, 0.0, 0.0), 0.2),
    (Image.new("YCbCr", (2, 2), (255, 128, 128)), (1.0, 1.0, 1.0), None),
    (Image.new("HSV", (2, 2), (0, 255, 255)), (1.0, 0.0, 0.0), None),
    (Image.new("RGBX", (2, 2), (0, 51, 255, 0)), (0.0, 0.2, 1.0), None),
    (Image.new("I", (2, 2), 32768), (0.5, 0.5, 0.5), None),
], ids=lambda v: v.mode if isinstance(v, Image.Image) else "")
def test_from_pil_modes(pil, rgb0, alpha0):
    rgb, alpha = from_pil(pil)
    _well_formed(rgb, alpha)
    assert rgb[0, :, 0, 0] == pytest.approx(torch.tensor(rgb0), abs=0.02)
    assert (alpha is None) == (alpha0 is None)
    if alpha0 is not None:
        assert alpha[0, 0, 0, 0] == pytest.approx(alpha0, abs=0.01)


def test_to_pil_and_from_pil():
    img, alpha = _grid((2, 3, 5, 7)), torch.ones(1, 1, 10, 14)
    pil = to_pil(img, alpha)
    assert pil.mode == "RGBA" and pil.size == (7, 5)  # first of the batch; alpha resized to match
    rgb, back = from_pil(pil)
    assert torch.equal(rgb, img[:1]) and torch.equal(back, torch.ones(1, 1, 5, 7))
    assert to_pil(img[0]).mode == "RGB"
    assert np.asarray(to_pil(torch.full((3, 1, 1), 0.5 / 255 + 1e-4))).max() == 1  # rounds
    with pytest.raises(ImageError):
        to_pil(torch.zeros(1, 2, 4, 4))


# ----------------------------------------------------------------------------------- save refusals
def test_save_refuses_to_overwrite_input(tmp_path):
    photo = tmp_path / "photo.jpg"
    save_image(_smooth(), photo)
    before = photo.read_bytes()
    (tmp_path / "sub").mkdir()
    for target, protect in [(photo, [photo]), (tmp_path / "sub" / ".." / "photo.jpg", [str(photo)]),
                            (photo, str(photo)), (photo, (tmp_path / "other.png", photo))]:
        with pytest.raises(OutputError) as info:
            save_image(torch.zeros(1, 3, 4, 4), target, protect=protect)
        assert "photo.jpg" in _one_line_error(info, OutputError)
    if hasattr(os, "symlink"):
        (tmp_path / "link.jpg").symlink_to(photo)
        with pytest.raises(OutputError):
            save_image(torch.zeros(1, 3, 4, 4), tmp_path / "link.jpg", protect=[photo])
    assert photo.read_bytes() == before


def test_save_refuses_bad_targets(tmp_path):
    with pytest.raises(OutputError) as info:
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / "out.xyz")
    assert ".png" in _one_line_error(info, OutputError) and ".jpg" in str(info.value)
    with pytest.raises(OutputError) as info:
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / "nope" / "out.png")
    assert "does not exist" in _one_line_error(info, OutputError)
    assert not (tmp_path / "nope").exists()
    with pytest.raises(SettingsError):
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / "q.jpg", quality=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error,caught", [(OSError(28, "No space left on device"), OutputError),
                                          (RuntimeError("boom"), RuntimeError)])
def test_failed_save_leaves_target_and_no_temp(tmp_path, monkeypatch, error, caught):
    target = tmp_path / "out.png"
    target.write_bytes(b"old content")
    listing = sorted(os.listdir(tmp_path))

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise error

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(caught) as info:
        save_image(torch.zeros(1, 3, 4, 4), target)
    if caught is OutputError:
        assert "No space left" in _one_line_error(info, OutputError)
    assert target.read_bytes() == b"old content" and sorted(os.listdir(tmp_path)) == listing


def test_save_permissions_follow_umask(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    out = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "p.png")
    if os.name == "posix":
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


# ------------------------------------------------------------------------------------ output names
def test_default_output_path(tmp_path):
    photo = tmp_path / "photo.jpg"
    assert default_output_path(photo) == tmp_path / "photo_stylized.jpg"
    (tmp_path / "photo_stylized.jpg").touch()
    assert default_output_path(photo) == tmp_path / "photo_stylized-1.jpg"
    (tmp_path / "photo_stylized-1.jpg").touch()
    assert default_output_path(photo) == tmp_path / "photo_stylized-2.jpg"
    for name in ("anim.gif", "scan.bmp", "scan.tif", "scan.TIFF", "noext"):
        assert default_output_path(tmp_path / name).suffix == ".png"
    assert default_output_path(tmp_path / "a.PNG").name == "a_stylized.PNG"
    assert default_output_path(photo, ext="webp").name == "photo_stylized.webp"
    assert default_output_path(photo, ext=".PNG", suffix="_x").name == "photo_x.png"
    assert default_output_path(photo, suffix="") == tmp_path / "photo-1.jpg"  # never the input itself
    with pytest.raises(OutputError):
        default_output_path(photo, ext="xyz")


# ----------------------------------------------------------------------------------- other inputs
def test_in_memory_inputs(corpus):
    png = (corpus / "rgba.png").read_bytes()
    for src in (png, bytearray(png), memoryview(png), Image.open(io.BytesIO(png))):
        rgb, alpha = read_image(src)
        _well_formed(rgb, alpha)
        assert alpha is not None and rgb.shape == (1, 3, 5, 6)
    u8 = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert torch.equal(read_image(u8)[0], torch.from_numpy(u8).permute(2, 0, 1)[None].float() / 255)
    rgb, alpha = read_image(np.full((2, 3), 65535, np.uint16))
    assert rgb.shape == (1, 3, 2, 3) and rgb.min() == 1.0 and alpha is None
    rgb, alpha = read_image(np.full((2, 3, 4), 0.25, np.float64))
    assert alpha.shape == (1, 1, 2, 3) and rgb.max() == 0.25
    assert read_image(np.ones((2, 2), bool))[0].min() == 1.0
    t = torch.rand(3, 5, 6)
    assert torch.equal(read_image(t)[0], t[None])
    rgb, alpha = read_image(torch.rand(1, 4, 5, 6))
    assert rgb.shape == (1, 3, 5, 6) and alpha.shape == (1, 1, 5, 6)
    assert read_image(torch.full((1, 3, 2, 2), 1.04))[0].max() == 1.0  # small overshoot clamped


@pytest.mark.parametrize("src", [
    torch.rand(2, 3, 4, 4), torch.rand(1, 2, 4, 4), torch.rand(4, 4), torch.rand(1, 1, 1, 3, 4, 4),
    torch.zeros(1, 3, 0, 4), torch.randint(0, 255, (3, 4, 4)), torch.full((3, 2, 2), float("nan")),
    torch.full((3, 2, 2), 255.0), np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.int32),
    np.zeros((0, 4, 3), np.uint8), np.full((2, 2, 3), 3.0), b"", "", [1, 2, 3], 42,
], ids=lambda v: type(v).__name__)
def test_bad_inputs(src):
    with pytest.raises(HuafengError) as info:
        read_image(src)
    _one_line_error(info, ImageError)


# ------------------------------------------------------------------------------------------ resize
@pytest.mark.parametrize("shape,size,expected", [
    ((1, 3, 30, 40), 20, (15, 20)), ((1, 3, 40, 30), 20, (20, 15)), ((2, 3, 10, 5), 100, (100, 50)),
    ((1, 3, 1, 500), 64, (1, 64)), ((1, 3, 500, 1), 7, (7, 1)), ((1, 1, 9, 9), 4, (4, 4)),
    ((1, 5, 8, 6), 8, (8, 6)),
])
def test_resize_long_side(shape, size, expected):
    img = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    out = resize_long_side(img, size)
    assert out.shape == (*shape[:2], *expected) and out.dtype == torch.float32
    assert max(out.shape[-2:]) == size and min(out.shape[-2:]) >= 1
    assert out.min() >= 0 and out.max() <= 1


def test_resize_rejects_bad_size_and_load_image(corpus):
    for size in (0, -3, 2.5, True):
        with pytest.raises(SettingsError):
            resize_long_side(torch.rand(1, 3, 4, 4), size)
    assert load_image(corpus / "tall_1x5000.png", size=256).shape == (1, 3, 256, 1)
    assert load_image(corpus / "rgb.bmp", size=22).shape == (1, 3, 14, 22)
    assert load_image(corpus / "rgb.bmp").shape == (1, 3, 7, 11)
