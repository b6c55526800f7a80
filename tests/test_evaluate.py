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


def test_report_builds_on_a_2x2_grid_and_resumes(tmp_path):
    photos, paintings = make_folders(tmp_path)
    out = tmp_path / "report"
    s = EvaluateSettings(content_dir=str(photos), style_dir=str(paintings), out=str(out), methods=("optimize",),
                         photos=2, styles=2, size=32, overrides=FAST)
    seen = []
    result = evaluate(s, progress=seen.append)
    assert seen[-1].step == seen[-1].total == 4
    html = (out / "index.html").read_text()
    assert "sheet_optimize.png" in html and "quality_vs_time.png" in html
    assert (out / "sheet_optimize.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 4 and {r["style"] for r in rows} == {"style0", "style1"}
    for r in rows:
        assert 0 < float(r["ssim"]) <= 1 and float(r["gram_distance"]) >= 0 and float(r["seconds"]) > 0
    summary = json.loads((out / "metrics.json").read_text())["summary"]["optimize"]
    assert summary["cells"] == 4 and summary["diversity"] > 0
    # a rerun reuses every finished cell (no picture is written again)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells" / "optimize").glob("*.png")}
    again = evaluate(s)
    assert again["summary"] == result["summary"]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_bench_rows_table_and_cost_plot(tmp_path):
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
