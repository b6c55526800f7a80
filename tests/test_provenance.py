"""Provenance: the record of what made an output, in each format's own metadata, read back; the CLI
writes it by default and not with --no-metadata; ``huafeng info`` prints it; no user path ever leaks."""
import hashlib
import json

import pytest
import torch
from PIL import Image

from huafeng import __version__
from huafeng.batch import BatchSettings, run_batch
from huafeng.cli import main
from huafeng.errors import ImageError
from huafeng.image import read_image, save_image
from huafeng.provenance import Provenance, _clean, describe, read_provenance
from huafeng.weights import WEIGHTS_DIR

from nets import random_fast_net, random_gan

TINY = ["--method", "optimize", "--size", "32", "--steps", "2", "-q"]


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture()
def photo(tmp_path):
    torch.manual_seed(0)
    p = tmp_path / "photo.png"
    save_image(torch.rand(1, 3, 24, 40), p)
    return p


def test_describe_names_bundled_styles_and_shipped_models():
    r = describe("auto", "starry-night", {"size": 32}, strength=0.5)
    assert r.software == "huafeng" and r.version == __version__
    assert r.method == "fast"  # the library's auto choice: the style has a trained network
    assert r.styles == ({"name": "starry-night", "weight": 1.0},)
    assert r.models == ({"name": "fast-starry-night", "sha256": sha(WEIGHTS_DIR / "fast-starry-night.safetensors")},)
    assert r.settings == {"size": 32, "tile": 1024, "overlap": 64, "backend": "torch"}
    assert r.controls == {"strength": 0.5, "preserve_color": "none", "mask": None}
    o = describe("optimize", ["udnie:0.25", "the-scream:0.75"], {"backbone": "vgg16", "size": 32})
    assert [s["weight"] for s in o.styles] == [0.25, 0.75]
    assert o.models == ({"name": "vgg16", "sha256": sha(WEIGHTS_DIR / "vgg16.safetensors")},)
    assert o.settings["backbone"] == "vgg16" and o.settings["steps"] is None
    p = describe("photoreal", "udnie")  # the lite0 encoder and the decoders
    assert [m["name"] for m in p.models] == ["lite0", "photoreal"]


def test_settings_paths_become_hashes_or_nothing(tmp_path):
    f = tmp_path / "mine.safetensors"
    f.write_bytes(b"weights")
    cleaned = _clean({"weights": str(f), "model": str(tmp_path / "gone.safetensors"), "levels": ("L3", "L1"),
                      "backbone": "lite0", "home": "~/x", "size": None, "detail": 1.0})
    assert cleaned == {"weights": "sha256:" + sha(f), "model": None, "levels": ["L3", "L1"], "backbone": "lite0",
                       "home": None, "size": None, "detail": 1.0}


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tif", "gif"])
def test_round_trip_in_each_format(tmp_path, ext):
    rec = describe("optimize", "udnie", {"size": 32}, preserve_color="luminance")
    out = save_image(torch.rand(1, 3, 20, 30), tmp_path / f"out.{ext}", provenance=rec)
    assert read_provenance(out) == rec
    assert read_image(out)[0].shape == (1, 3, 20, 30)  # still an ordinary picture
    text = rec.to_json()
    assert len(text) < 4096  # small
    if ext != "gif":  # stored as it is (GIF cuts a comment into 255-byte blocks)
        assert text.encode() in out.read_bytes()
    with Image.open(out) as im:  # in the format's own metadata, where other tools look
        if ext == "png":
            assert json.loads(im.info["huafeng"])["method"] == "optimize" and im.info["Software"].startswith("huafeng")
        elif ext in ("jpg", "webp"):
            exif = im.getexif()
            assert exif[0x0131] == f"huafeng {__version__}"  # Software
            assert exif.get_ifd(0x8769)[0x9286].startswith(b"ASCII\0\0\0{")  # UserComment
        elif ext == "tif":
            assert im.tag_v2[270] == text and im.tag_v2[305] == f"huafeng {__version__}"
        else:
            assert im.info["comment"] == text.encode()


def test_no_record_unless_asked(tmp_path):
    for ext in ("png", "jpg", "bmp"):
        out = save_image(torch.rand(1, 3, 8, 8), tmp_path / f"plain.{ext}")
        with pytest.raises(ImageError, match="carries no huafeng record"):
            read_provenance(out)
    bmp = save_image(torch.rand(1, 3, 8, 8), tmp_path / "x.bmp", provenance=describe("optimize", "udnie"))
    with pytest.raises(ImageError, match="no huafeng record"):  # BMP has no metadata to hold one
        read_provenance(bmp)


def test_foreign_or_forged_metadata_is_not_a_record(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    for text in ['{"software": "other", "method": "x"}', "not json", '{"software": "huafeng"}',
                 '{"software": "huafeng", "method": "m", "styles": "oops"}', " " * 70000]:
        info = PngInfo()
        info.add_text("huafeng", text)
        Image.new("RGB", (4, 4)).save(tmp_path / "f.png", pnginfo=info)
        with pytest.raises(ImageError, match="no huafeng record"):
            read_provenance(tmp_path / "f.png")
    (tmp_path / "t.png").write_text("hello")
    with pytest.raises(ImageError, match="Cannot read t.png"):
        read_provenance(tmp_path / "t.png")
    with pytest.raises(ImageError, match="does not exist"):
        read_provenance(tmp_path / "missing.png")


def test_the_bomb_guard_stays_on_when_reading(tmp_path):
    import struct
    import zlib

    from huafeng.errors import ImageTooLargeError

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "bomb.png"  # a 30000 x 30000 header (900 MP) and almost no data
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError, match="too large"):
        read_provenance(bomb)
    assert Image.MAX_IMAGE_PIXELS == before and before is not None


def test_cli_writes_the_record_and_no_metadata_leaves_none(photo, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    assert main(["stylize", str(photo), "--style", "udnie", "--strength", "0.8", "-o", str(out), *TINY]) == 0
    r = read_provenance(out)
    assert r.method == "optimize" and r.styles == ({"name": "udnie", "weight": 1.0},)
    assert r.settings["size"] == 32 and r.settings["steps"] == 2 and r.controls["strength"] == 0.8
    bare = tmp_path / "bare.png"
    assert main(["stylize", str(photo), "--style", "udnie", "-o", str(bare), "--no-metadata", *TINY]) == 0
    with Image.open(bare) as im:
        assert not {"huafeng", "Software"} & set(im.info)
    assert b"huafeng" not in bare.read_bytes()
    capsys.readouterr()

    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"huafeng {__version__}\nmethod: optimize\nstyle: udnie, weight 1\n")
    assert f"model: lite0, sha256 {sha(WEIGHTS_DIR / 'lite0.safetensors')}" in printed and "steps=2" in printed
    assert main(["info", "--json", str(out)]) == 0
    assert Provenance.from_json(capsys.readouterr().out) == r
    for bad in (bare, tmp_path / "nothing-here.png"):
        assert main(["info", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("huafeng: error:") and "Traceback" not in err


def test_no_user_path_or_file_name_in_the_output(photo, tmp_path):
    secret = tmp_path / "zq-private-atelier-5821"
    secret.mkdir()
    painting = secret / "my-secret-painting-9137.png"
    save_image(torch.rand(1, 3, 40, 40), painting)
    net = random_fast_net(secret / "my-secret-net-4410.safetensors")
    gan = random_gan(secret / "my-secret-gan-7702.safetensors")
    outs = tmp_path / "outs"
    outs.mkdir()
    runs = [(["--style", str(painting), *TINY], "a.png"), (["--style", f"{painting}:0.5", *TINY], "b.jpg"),
            (["--style", str(painting), "--method", "photoreal", "--size", "32", "-q"], "c.webp"),
            (["--style", str(net), "--method", "fast", "-q"], "d.tif"),
            (["--method", "gan", "--model", str(gan), "--size", "32", "-q"], "e.png")]
    for args, name in runs:
        assert main(["stylize", str(photo), *args, "-o", str(outs / name)]) == 0
        data = (outs / name).read_bytes()
        for leak in ("zq-private-atelier-5821", "my-secret-painting-9137", "my-secret-net-4410", "my-secret-gan-7702",
                     str(tmp_path)):
            assert leak.encode() not in data, (name, leak)
        r = read_provenance(outs / name)
        if r.method == "fast":
            assert r.styles[0] == {"sha256": sha(net), "weight": 1.0} and r.models == ({"sha256": sha(net)},)
        elif r.method == "gan":  # the model file, named by its content in the models and in the settings
            assert r.models == ({"sha256": sha(gan)},) and r.settings["model"] == "sha256:" + sha(gan)
        else:
            assert r.styles[0] == {"sha256": sha(painting), "weight": 1.0}


def test_batch_outputs_carry_the_record(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    save_image(torch.rand(1, 3, 24, 32), src / "sub" / "p.png")
    save_image(torch.rand(1, 3, 24, 32), src / "q.jpg")
    c = run_batch(BatchSettings(str(src), str(tmp_path / "out"), ("udnie",), settings={"size": 32, "steps": 2}))
    assert c["done"] == 2
    for out in (tmp_path / "out" / "sub" / "p.png", tmp_path / "out" / "q.jpg"):
        r = read_provenance(out)
        assert r.method == "optimize" and r.styles[0]["name"] == "udnie" and r.settings["steps"] == 2
        assert str(src).encode() not in out.read_bytes()
    run_batch(BatchSettings(str(src), str(tmp_path / "bare"), ("udnie",), settings={"size": 32, "steps": 2},
                            metadata=False))
    with pytest.raises(ImageError, match="no huafeng record"):
        read_provenance(tmp_path / "bare" / "q.jpg")


def test_video_carries_a_container_tag(tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from test_video import make_clip

    from huafeng.methods.fast import FastStylizer
    from huafeng.video import stylize_video

    net = random_fast_net(tmp_path / "clip-net.safetensors")
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=4)
    rec = describe("fast", [str(net)])
    for out in (tmp_path / "out.mp4", tmp_path / "out.mkv"):
        stylize_video(clip, out, FastStylizer(), [str(net)], [1.0], provenance=rec)
        assert read_provenance(out) == rec and b"clip-net" not in out.read_bytes()
    stylize_video(clip, tmp_path / "frames", FastStylizer(), [str(net)], [1.0], provenance=rec)
    assert all(read_provenance(f) == rec for f in (tmp_path / "frames").glob("*.png"))
    stylize_video(clip, tmp_path / "bare.mp4", FastStylizer(), [str(net)], [1.0])
    with pytest.raises(ImageError, match="no huafeng record"):
        read_provenance(tmp_path / "bare.mp4")
    # the command line: on by default, off with --no-metadata
    assert main(["video", str(clip), "--style", "starry-night", "-o", str(tmp_path / "cli.mp4"), "-q"]) == 0
    r = read_provenance(tmp_path / "cli.mp4")
    assert r.method == "fast" and r.styles == ({"name": "starry-night", "weight": 1.0},)
    assert main(["video", str(clip), "--style", "starry-night", "-o", str(tmp_path / "cli-bare.mp4"), "-q",
                 "--no-metadata"]) == 0
    with pytest.raises(ImageError, match="no huafeng record"):
        read_provenance(tmp_path / "cli-bare.mp4")
