"""Mobile export (issue 18, part 1): ExecuTorch programs with the XNNPACK delegate, checked by
ExecuTorch's own runtime on photos before the file is written; a model the format can't hold, or an
int8 program under the bar, is refused in one line and nothing is written."""
import pytest
import torch

pytest.importorskip("executorch.runtime")

from huafeng.cli import main  # noqa: E402
from huafeng.errors import ExportError  # noqa: E402
from huafeng.export import load_model  # noqa: E402
from huafeng.export.mobile import PteNet, PteSettings, export_pte, read_pte_metadata  # noqa: E402
from huafeng.methods.graphs import ExportModel  # noqa: E402

from nets import random_fast_net  # noqa: E402

TINY = PteSettings(size=(48, 64))


@pytest.fixture()
def net_file(tmp_path, one_thread):
    return random_fast_net(tmp_path / "wavy.safetensors", card="# wavy\nA random test network.\n")


def test_tiny_network_parity_and_metadata(net_file, tmp_path):
    out = tmp_path / "wavy.pte"
    r = export_pte(str(net_file), out, TINY)
    assert r["format"] == "pte" and r["precision"] == "fp32" and len(r["parity"]) == 2
    assert all(row["psnr"] >= 40 and row["max_abs"] < 1e-3 for row in r["parity"]), r["parity"]
    assert out.is_file() and r["bytes"] == out.stat().st_size
    meta = read_pte_metadata(out)
    assert meta["huafeng.kind"] == "fast" and meta["model_card"].startswith("# wavy")
    assert meta["safetensors.note"] == "random test network" and "48x64" in meta["huafeng.io"]
    x = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(2))  # not a photo the check saw
    with torch.no_grad():
        ref = load_model(str(net_file)).reference(x)
    got = PteNet(out)(x)
    assert got.shape == x.shape and (got - ref).abs().max() < 1e-4
    assert (got - x).abs().mean() > 0.02  # the network changes the picture: parity is not trivial


class _DataDependent(torch.nn.Module):
    """Branches on a pixel value: torch.export (and so ExecuTorch) cannot hold a data-dependent branch."""

    def forward(self, x):
        if x.mean() > 0.5:
            return x.flip(-1)
        return 1 - x


def test_a_model_the_format_cannot_hold_is_refused_in_one_line(tmp_path):
    net = _DataDependent()
    model = ExportModel("test", "branchy", net, net, ("image",), ())
    out = tmp_path / "branchy.pte"
    with pytest.raises(ExportError) as e:
        export_pte("", out, TINY, model=model)
    msg = str(e.value)
    assert "can't hold branchy" in msg and "torch.export" in msg and "\n" not in msg
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_program_the_runtime_cannot_load_is_refused(net_file, tmp_path, monkeypatch):
    """XNNPACK may refuse a node only when the program loads (the photoreal graph's depthwise conv here)."""
    from huafeng.export import mobile

    def refuse(path, threads=None):
        raise RuntimeError("Failed to load method forward, error: 0x:1")

    monkeypatch.setattr(mobile, "PteNet", refuse)
    with pytest.raises(ExportError) as e:
        export_pte(str(net_file), tmp_path / "x.pte", TINY)
    assert "can't hold wavy" in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.glob("*.pte")) == []


def test_a_failed_check_writes_nothing(net_file, tmp_path):
    model = load_model(str(net_file))
    model.reference = lambda x: x  # torch says "identity": the program disagrees, so it is refused
    with pytest.raises(ExportError) as e:
        export_pte(str(net_file), tmp_path / "x.pte", TINY, model=model)
    assert "PSNR" in str(e.value) or "differs" in str(e.value)
    assert not (tmp_path / "x.pte").exists()


@pytest.mark.slow  # ~2 min here: quantization exports the graph twice and calibrates on 8 pictures
def test_int8_within_30_db_or_refused(net_file, tmp_path):
    fp32 = export_pte(str(net_file), tmp_path / "a.pte", TINY)
    q = export_pte(str(net_file), tmp_path / "a.int8.pte", PteSettings(size=(48, 64), int8=True))
    assert q["precision"] == "int8" and 30 <= q["min_psnr"] < fp32["min_psnr"]
    assert q["bytes"] < fp32["bytes"]
    with pytest.raises(ExportError) as e:
        export_pte(str(net_file), tmp_path / "b.pte", PteSettings(size=(48, 64), int8=True, min_psnr_int8=99))
    assert "int8" in str(e.value) and "\n" not in str(e.value) and not (tmp_path / "b.pte").exists()


def test_cli_pte(net_file, tmp_path, capsys):
    out = tmp_path / "m.pte"
    assert main(["export", str(net_file), "--format", "pte", "--size", "48x64", "-o", str(out), "-q"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(out)) and "PSNR >=" in line and out.is_file()
    for bad in (["--size", "48by64"], ["--size", "8x8"], ["--web", str(tmp_path / "w")]):
        assert main(["export", str(net_file), "--format", "pte", "-o", str(tmp_path / "n.pte"), "-q", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("huafeng: error:") and "\n" not in err
    assert main(["export", str(net_file), "--size", "48x64", "-o", str(tmp_path / "n.onnx"), "-q"]) == 2
    assert not (tmp_path / "n.pte").exists() and not (tmp_path / "n.onnx").exists()


@pytest.mark.slow
def test_the_painting_network_as_a_program(tmp_path, one_thread):
    """The arbitrary method's shipped network, the painting as a second input, at a small fixed size."""
    r = export_pte("arbitrary", tmp_path / "arbitrary.pte", PteSettings(size=(64, 96), style_size=(64, 64)))
    assert r["kind"] == "arbitrary" and r["min_psnr"] >= 40, r["parity"]
    assert read_pte_metadata(tmp_path / "arbitrary.pte")["huafeng.inputs"] == '["image", "style"]'
