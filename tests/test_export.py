"""ONNX export: parity with torch for every exportable kind at small sizes, what the check catches
(frozen instance-norm statistics, a naive trace), int8, metadata, bad files, the onnxruntime backend."""
import copy
import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
import onnx  # noqa: E402

from huafeng.cli import main  # noqa: E402
from huafeng.errors import ExportError, SettingsError, WeightsError  # noqa: E402
from huafeng.export import ExportSettings, export_onnx, load_model, psnr  # noqa: E402
from huafeng.export.graphs import newton_schulz_sqrt, size_free  # noqa: E402
from huafeng.export.runtime import OnnxNet, cached_export  # noqa: E402
from huafeng.image import read_image, save_image  # noqa: E402

from nets import random_fast_net, random_gan  # noqa: E402

SMALL = ExportSettings(check_sizes=(48, 61))  # 61: not a multiple of 4, so the padding path is checked


@pytest.fixture()
def net_file(tmp_path):
    return random_fast_net(tmp_path / "wavy.safetensors", card="# wavy\nA random test network.\n")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch, one_thread):  # tiny pictures: one thread is faster (onnxruntime follows)
    monkeypatch.setenv("HUAFENG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _unseen_size_diff(onnx_path, reference, shape=(1, 3, 37, 70)) -> float:
    """Max abs difference against torch at a size the export never saw."""
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = reference(x).numpy()
    got = OnnxNet(onnx_path)(x).numpy()
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max())


def test_per_style_network_parity_and_metadata(net_file, tmp_path):
    out = tmp_path / "wavy.onnx"
    r = export_onnx(str(net_file), out, SMALL)
    assert r["kind"] == "fast" and r["precision"] == "fp32" and len(r["parity"]) == 4
    assert all(row["psnr"] >= 40 for row in r["parity"]), r["parity"]
    assert _unseen_size_diff(out, load_model(str(net_file)).reference) < 1e-4
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["huafeng.kind"] == "fast" and props["safetensors.note"] == "random test network"
    assert props["safetensors.arch"].startswith("huafeng-fast") and props["model_card"].startswith("# wavy")
    assert json.loads(props["huafeng.parity"]) == r["parity"]
    x = torch.rand(1, 3, 32, 32)
    assert (OnnxNet(out)(x) - x).abs().mean() > 0.02  # the network changes the photo: parity is not trivial


def test_frozen_instance_norm_statistics_are_caught(net_file, tmp_path):
    """The classic broken export: instance norm traced with fixed statistics (as a batch norm in eval
    mode would be). The result looks plausible, only different; the parity check refuses it."""
    model = load_model(str(net_file))
    frozen = copy.deepcopy(model.reference)
    frozen.norm_mode("record")
    with torch.no_grad():
        frozen(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    frozen.norm_mode("fixed")
    model.graph, model.fallbacks = frozen, ()
    with pytest.raises(ExportError) as e:
        export_onnx(str(net_file), tmp_path / "bad.onnx", SMALL, model=model)
    assert "PSNR" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "bad.onnx").exists()


class _SizeFrozen(torch.nn.Module):
    """Runs the network at 64x64 and resizes back: right in eager mode at any size, but ``int()`` on
    the size freezes it to the trace's example size (a common way exports silently specialise)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        h, w = int(x.shape[-2]), int(x.shape[-1])
        y = self.net(torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False))
        return torch.nn.functional.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


def test_a_size_frozen_at_trace_time_is_caught(net_file, tmp_path):
    model = load_model(str(net_file))
    model.graph = model.reference = _SizeFrozen(model.reference)
    model.fallbacks = ()
    with pytest.raises(ExportError) as e:
        export_onnx(str(net_file), tmp_path / "frozen.onnx", SMALL, model=model)
    assert "gives a" in str(e.value) and "\n" not in str(e.value) and not (tmp_path / "frozen.onnx").exists()


class _BranchyNet(torch.nn.Module):
    """Pads to a multiple of 4 behind a Python branch on the size, as the first fast network did: a
    trace takes the branch once, so a naive export computes something else at other sizes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.down, self.up = torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.Conv2d(8, 3, 3, 1, 1)
        self.norm = torch.nn.InstanceNorm2d(8, affine=True)

    def forward(self, x):
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
        y = torch.relu(self.norm(self.down(x)))
        y = torch.sigmoid(self.up(torch.nn.functional.interpolate(y, scale_factor=2.0, mode="nearest")))
        return y[..., :h, :w]


def test_size_branches_fall_back_to_the_size_wrapper(net_file, tmp_path):
    net = _BranchyNet().eval()
    model = load_model(str(net_file))
    model.graph, model.reference, model.fallbacks = net, net, ()
    with pytest.raises(ExportError):  # the naive trace alone is caught ...
        export_onnx(str(net_file), tmp_path / "naive.onnx", SMALL, model=model)
    model.fallbacks = (lambda: size_free(net),)  # ... and the wrapped one is exact
    r = export_onnx(str(net_file), tmp_path / "wrapped.onnx", SMALL, model=model)
    assert r["min_psnr"] >= 100 and _unseen_size_diff(tmp_path / "wrapped.onnx", net) < 1e-5


class _FixedSize(torch.nn.Module):
    """A graph whose result is always 16x16 px: the wrong shape at every size but that one."""

    def forward(self, x):
        return torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)


def test_every_fallback_of_the_wrong_shape_is_a_one_line_error(net_file, tmp_path):
    model = load_model(str(net_file))
    model.graph, model.reference, model.fallbacks = _FixedSize(), torch.nn.Identity(), (_FixedSize,)
    with pytest.raises(ExportError) as e:  # was an AssertionError (before that, shutil.move(None)'s TypeError)
        export_onnx(str(net_file), tmp_path / "fixed.onnx", SMALL, model=model)
    assert "each of its 2 graphs" in str(e.value) and "\n" not in str(e.value) and not (tmp_path / "fixed.onnx").exists()


def test_int8_is_smaller_and_within_30_db(net_file, tmp_path):
    fp32 = export_onnx(str(net_file), tmp_path / "a.onnx", SMALL)
    q = export_onnx(str(net_file), tmp_path / "a.int8.onnx", ExportSettings(int8=True, check_sizes=(48, 61),
                                                                            calibration_size=64))
    assert q["precision"] == "int8" and q["int8"]["convs_int8"] > 0 and q["int8"]["convs_fp32"] == 4
    assert q["bytes"] < 0.6 * fp32["bytes"]
    assert 30 <= q["min_psnr"] < fp32["min_psnr"]  # quantized: close, but not the same numbers
    ops = {n.op_type for n in onnx.load(str(tmp_path / "a.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_int8_below_the_bar_is_refused(net_file, tmp_path):
    s = ExportSettings(int8=True, check_sizes=(48,), calibration_size=48, min_psnr_int8=99)
    with pytest.raises(ExportError) as e:
        export_onnx(str(net_file), tmp_path / "q.onnx", s)
    assert "int8" in str(e.value) and "\n" not in str(e.value) and not (tmp_path / "q.onnx").exists()


def test_gan_generator_parity(tmp_path):
    pytest.importorskip("huafeng.methods.gan")
    path = random_gan(tmp_path / "monet.safetensors")
    r = export_onnx(str(path), tmp_path / "monet.onnx", SMALL)
    assert r["kind"] == "gan" and r["min_psnr"] >= 40, r["parity"]
    assert _unseen_size_diff(tmp_path / "monet.onnx", load_model(str(path)).reference) < 1e-4


def test_newton_schulz_matches_the_eigendecomposition():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    eig = torch.logspace(-5, 1.5, 40, dtype=torch.float64)  # condition number ~3e6, as real covariances
    a = q @ torch.diag(eig) @ q.T
    sqrt, isqrt = newton_schulz_sqrt(a, 40)
    assert torch.allclose(sqrt, q @ torch.diag(eig.sqrt()) @ q.T, atol=1e-8)
    assert torch.allclose(isqrt @ a @ isqrt, torch.eye(40, dtype=torch.float64), atol=1e-6)


def test_photoreal_graph_parity(tmp_path):
    """Encoder + Newton–Schulz WCT + decoders with the painting as a second input, against the torch
    path with eigh; and the torch reference against the photoreal method itself."""
    r = export_onnx("photoreal", tmp_path / "photoreal.onnx", ExportSettings(check_sizes=(61,)))
    assert r["kind"] == "photoreal" and r["min_psnr"] >= 40, r["parity"]
    model = load_model("photoreal")
    sess = OnnxNet(tmp_path / "photoreal.onnx")
    assert sess.inputs == ["image", "style"]
    c, s = torch.rand(1, 3, 45, 70), torch.rand(1, 3, 50, 50)
    with torch.no_grad():
        ref = model.reference(c, s)
    assert (sess(c, s) - ref).abs().max() < 1e-3

    from huafeng.methods.photoreal import PhotorealSettings, PhotorealStylizer

    fields = PhotorealSettings.__dataclass_fields__
    plain = {k: v for k, v in {"work_size": 0, "margin": 0}.items() if k in fields}
    st = PhotorealStylizer(PhotorealSettings(style_size=50, **plain))
    assert (st.stylize(c, [s]) - ref).abs().max() < 2e-3


def test_bad_model_files_are_one_line_errors(tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01not a safetensors file" * 10)
    other = tmp_path / "other.safetensors"
    from huafeng.weights import save_file

    save_file({"w": torch.zeros(3)}, other, {"arch": "somebody-else"})
    for ref, code in ((junk, 2), (other, 2), (tmp_path / "missing.safetensors", 2), ("no-such-style", 2)):
        assert main(["export", str(ref), "-o", str(tmp_path / "x.onnx"), "-q"]) == code
        err = capsys.readouterr().err.strip()
        assert err.startswith("huafeng: error:") and "\n" not in err, err
    with pytest.raises(WeightsError):
        load_model(str(other))
    with pytest.raises(SettingsError):
        load_model("no-such-style")
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export_prints_the_parity(net_file, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(net_file), "-o", str(out), "-q"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(out)) and "PSNR >=" in line and out.is_file()
    assert main(["bench", "--backends", "torch,onnx", "--model", str(net_file), "--sizes", "32", "-q"]) == 0
    table = capsys.readouterr().out
    assert "| onnx | 32 |" in table and "| torch | 32 |" in table
    assert main(["bench", "--backends", "torch,tflite", "--model", str(net_file), "-q"]) == 2


def test_cache_exports_once(net_file, cache):
    p1 = cached_export(str(net_file))
    stamp = p1.stat().st_mtime_ns
    assert p1.parent == cache / "onnx" and p1.suffix == ".onnx"
    assert cached_export(str(net_file)) == p1 and p1.stat().st_mtime_ns == stamp
    from huafeng.export.bench import backends_table, bench_backends

    rows = bench_backends(str(net_file), ("torch", "onnx"), sizes=(40,), repeats=1)  # reuses the cached export
    assert p1.stat().st_mtime_ns == stamp and [r["backend"] for r in rows] == ["torch", "onnx"]
    assert rows[0]["psnr"] == 200 and rows[1]["psnr"] >= 40 and rows[1]["model_mb"] > 0
    assert backends_table(rows).count("\n") == 3


def test_backend_onnx_through_the_cli(net_file, tmp_path, cache):
    photo = tmp_path / "tiny.png"
    save_image(torch.rand(1, 3, 30, 42, generator=torch.Generator().manual_seed(5)), photo)
    outs = {}
    for backend in ("torch", "onnx"):
        outs[backend] = tmp_path / f"{backend}.png"
        assert main(["stylize", str(photo), "--method", "fast", "--style", str(net_file), "--backend", backend,
                     "-o", str(outs[backend]), "-q"]) == 0
    a, b = read_image(outs["torch"])[0], read_image(outs["onnx"])[0]
    assert (a - b).abs().max() <= 1.5 / 255
    assert list((cache / "onnx").glob("*.onnx"))  # exported on first use, into the cache
    assert main(["stylize", str(photo), "--method", "fast", "--style", str(net_file), "--backend", "tensorrt",
                 "-o", str(tmp_path / "x.png"), "-q"]) == 2


def test_backend_onnx_for_gan_and_photoreal(tmp_path):
    from huafeng.image import load_image
    from huafeng.methods.photoreal import PhotorealSettings, PhotorealStylizer
    from huafeng.styles import resolve_style, sample_photo

    photo = load_image(sample_photo("cat"), size=72)
    gan = pytest.importorskip("huafeng.methods.gan")
    path = str(random_gan(tmp_path / "g.safetensors", seed=2))
    a, b = (gan.GanStylizer(gan.GanSettings(model=path, backend=be)).stylize(photo) for be in ("torch", "onnx"))
    assert (a - b).abs().max() < 1e-4 and (a - photo).abs().mean() > 0.02

    painting = load_image(resolve_style("the-scream"), size=128)
    a, b = (PhotorealStylizer(PhotorealSettings(backend=be)).stylize(photo, [painting]) for be in ("torch", "onnx"))
    assert psnr(a.numpy(), b.numpy()) >= 40
    from huafeng import controls as ctl

    with pytest.raises(SettingsError):
        PhotorealStylizer(PhotorealSettings(backend="onnx")).stylize(photo, [painting], controls=ctl.Controls(strength=0.5))


def test_video_backend_onnx_through_the_cli(net_file, tmp_path, cache):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    frames = tmp_path / "frames"
    frames.mkdir()
    g = torch.Generator().manual_seed(4)
    for i in range(3):
        save_image(torch.rand(1, 3, 32, 48, generator=g), frames / f"f{i:03d}.png")
    outs = {}
    for backend in ("torch", "onnx"):
        outs[backend] = tmp_path / f"styled-{backend}"
        assert main(["video", str(frames), "--method", "fast", "--style", str(net_file), "--backend", backend,
                     "--consistency", "0", "-o", str(outs[backend]), "-q"]) == 0
    a, b = (sorted(outs[k].glob("*.png")) for k in ("torch", "onnx"))
    assert len(a) == len(b) == 3
    for fa, fb in zip(a, b):
        assert (read_image(fa)[0] - read_image(fb)[0]).abs().max() <= 1.5 / 255


def test_export_never_overwrites_its_own_weights(net_file, capsys):
    before = net_file.read_bytes()
    assert main(["export", str(net_file), "-o", str(net_file), "-q"]) == 2
    assert "own weights" in capsys.readouterr().err and net_file.read_bytes() == before


def test_service_serves_gallery_networks_as_onnx_by_name_only(net_file, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from huafeng.methods import fast, gan
    from huafeng.service import ServiceConfig, create_app

    monkeypatch.setattr(fast, "gallery", lambda: {"wavy": net_file})
    monkeypatch.setattr(gan, "gallery", lambda: {})  # the shipped GAN models would be listed too
    client = TestClient(create_app(ServiceConfig(results_dir=str(tmp_path / "results"))))
    assert client.get("/v1/models").json() == [{"name": "wavy", "kind": "fast", "url": "/v1/models/wavy.onnx"}]
    r = client.get("/v1/models/wavy.onnx")
    assert r.status_code == 200
    props = {p.key: p.value for p in onnx.load_from_string(r.content).metadata_props}
    assert props["huafeng.kind"] == "fast"
    for bad in ("nope.onnx", "..%2Fwavy.onnx", "%2Fetc%2Fpasswd.onnx", "wavy.safetensors"):
        assert client.get("/v1/models/" + bad).status_code == 404, bad
    page = client.get("/browser")
    assert page.status_code == 200 and "ort.wasm.min.js" in page.text and "https://" not in page.text
