"""Export asks the methods for their graphs (issue 16, part 2): the registry finds a method's models by
its own hook; a new method exports with no export code changed; the arbitrary painting network (AdaIN
and WCT) exports with its matrix roots by Newton–Schulz and matches the method's torch path."""
import pytest
import torch

pytest.importorskip("onnxruntime")

from huafeng import methods  # noqa: E402
from huafeng.errors import SettingsError, WeightsError  # noqa: E402
from huafeng.export import ExportSettings, export_onnx, load_model  # noqa: E402
from huafeng.export.runtime import OnnxNet  # noqa: E402
from huafeng.methods.graphs import ExportModel  # noqa: E402

SMALL = ExportSettings(check_sizes=(72, 101))  # 101: not a multiple of the painting network's stride 8


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("HUAFENG_CACHE", str(tmp_path / "cache"))


class _Negative(torch.nn.Module):
    def forward(self, x):
        return 1 - x


class _NegativeStylizer:
    """A method that no export code knows: its hook is all it takes to be exportable."""

    method = "negative"

    def __init__(self, settings=None):
        self.settings = settings

    @staticmethod
    def export_graph(ref, ns_iters=40):
        if ref != "negative":
            return None
        net = _Negative().eval()
        return ExportModel("negative", "negative", net, net, ("image",), (), {"note": "1 - x"}, "# negative\n")

    @staticmethod
    def export_names():
        return ["negative"]


def test_a_new_method_exports_through_its_hook_alone(monkeypatch, tmp_path):
    monkeypatch.setitem(methods.METHODS, "negative", (object, _NegativeStylizer))
    model = load_model("negative")
    assert model.kind == "negative" and model.fallbacks  # export adds its size wrapper to image-only graphs
    r = export_onnx("negative", tmp_path / "neg.onnx", SMALL)
    assert r["kind"] == "negative" and r["min_psnr"] >= 100
    x = torch.rand(1, 3, 20, 30)
    assert torch.allclose(OnnxNet(tmp_path / "neg.onnx")(x), 1 - x, atol=1e-6)
    with pytest.raises(SettingsError) as e:  # the names every hook offers, in the one-line error
        load_model("no-such-model")
    assert "negative" in str(e.value) and "\n" not in str(e.value)


def test_every_exportable_method_answers_its_own_names():
    for name, (_, cls) in methods.METHODS.items():
        if not hasattr(cls, "export_graph"):
            continue
        assert cls.export_graph("surely-not-a-model", 40) is None
        for ref in cls.export_names()[:1]:
            assert methods.export_graph(ref).kind == name


def _wct_file(tmp_path):
    from huafeng.methods.paint_net import ARCH_WCT
    from huafeng.weights import load_file, save_file, shipped_path

    tensors, _ = load_file(shipped_path("arbitrary"))
    path = tmp_path / "wct.safetensors"
    save_file(tensors, path, {"arch": ARCH_WCT, "note": "the shipped decoder behind WCT"})
    return path


@pytest.mark.parametrize("transform", ["adain", "wct"])
def test_the_painting_network_exports_and_matches_the_method(transform, tmp_path):
    ref = "arbitrary" if transform == "adain" else str(_wct_file(tmp_path))
    r = export_onnx(ref, tmp_path / "paint.onnx", SMALL)
    assert r["kind"] == "arbitrary" and r["min_psnr"] >= 40, r["parity"]
    model = load_model(ref)
    assert model.inputs == ("image", "style") and model.graph.transform == transform
    photo, painting = torch.rand(1, 3, 50, 83), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref_out = model.reference(photo, painting)
    got = OnnxNet(tmp_path / "paint.onnx")(photo, painting)
    assert got.shape == photo.shape and (got - ref_out).abs().max() < 1e-3
    assert (got - photo).abs().mean() > 0.02  # it paints: the check is not of an identity

    # the reference is the method itself: the stylizer at full size (no working size) gives the same
    from huafeng.methods.arbitrary import ArbitrarySettings, ArbitraryStylizer

    st = ArbitraryStylizer(ArbitrarySettings(weights=ref, work_size=0, style_size=64))
    assert (st.stylize(photo, [painting]) - ref_out).abs().max() < 1e-4


def test_bad_references_are_one_line_errors(tmp_path):
    from huafeng.weights import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, other, {"arch": "somebody-else"})
    for ref, err in ((other, WeightsError), (tmp_path / "missing.safetensors", WeightsError), ("nope", SettingsError)):
        with pytest.raises(err) as e:
            methods.export_graph(str(ref))
        assert "\n" not in str(e.value)
