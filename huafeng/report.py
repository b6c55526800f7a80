"""The HTML report of ``huafeng evaluate``: contact sheets, a metrics table, plots and training curves.

Plain HTML with relative links to PNGs beside it: it opens offline, from a file or a static server.
"""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from .evaluate_variants import label, split_name
from .image import read_image
from .sheet import contact_sheet
from .weights import WEIGHTS_DIR

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
.best{font-weight:bold;background:#eef8ee}details{margin:1em 0}"""
SAME_PSNR = 40.0  # an onnxruntime row this close to its torch row gets no contact sheet of its own


def _plots(out: Path, rows: list[dict], summary: dict, bench_rows: list[dict] | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for method in summary:
        mine = [r for r in rows if r["method"] == method]
        axes[0].scatter([r["seconds"] for r in mine], [r["gram_distance"] for r in mine], label=label(method), alpha=0.7)
        axes[1].scatter([r["seconds"] for r in mine], [r["ssim"] for r in mine], label=label(method), alpha=0.7)
    axes[0].set(xscale="log", xlabel="seconds per image", ylabel="style distance (Gram, lower is better)",
                title="style vs time")
    axes[1].set(xscale="log", xlabel="seconds per image", ylabel="content SSIM (higher is better)",
                title="content vs time")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "quality_vs_time.png")
    plt.close(fig)
    made.append("quality_vs_time.png")
    if bench_rows:
        ok = [r for r in bench_rows if "skipped" not in r]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
        for method in dict.fromkeys(r["method"] for r in ok):
            mine = [r for r in ok if r["method"] == method]
            mp = [r["megapixels"] for r in mine]
            axes[0].plot(mp, [r["seconds"] for r in mine], "o-", label=method)
            axes[1].plot(mp, [r["peak_rss_mb"] for r in mine], "o-", label=method)
        if ok:
            lo, hi = min(r["megapixels"] for r in ok), max(r["megapixels"] for r in ok)
            t0 = min(r["seconds"] for r in ok if r["megapixels"] == lo)
            axes[0].plot([lo, hi], [t0, t0 * hi / lo], "k:", lw=1, label="linear in pixels")
        axes[0].set(xscale="log", yscale="log", xlabel="megapixels", ylabel="seconds", title="time vs resolution")
        positive = all(r["peak_rss_mb"] > 0 for r in ok)
        axes[1].set(xscale="log", yscale="log" if positive else "linear", xlabel="megapixels",
                    ylabel="peak RSS above start (MB)", title="memory vs resolution")
        for ax in axes:
            ax.grid(alpha=0.3, which="both")
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / "cost_vs_resolution.png")
        plt.close(fig)
        made.append("cost_vs_resolution.png")
    return made


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.4g}"


def _table(summary: dict, keys: list[str], lower_better: set[str], extra: dict[str, dict[str, str]] | None = None) -> str:
    """One row per entry of ``summary`` (best per column in bold); ``extra``: text columns by name."""
    extra = extra or {}
    head = "".join(f"<th>{html.escape(k)}</th>" for k in [*keys, *extra])
    best = {}
    for k in keys:
        vals = [v.get(k) for v in summary.values() if v.get(k) is not None]
        best[k] = (min if k in lower_better else max)(vals) if len(vals) > 1 else None
    body = ""
    for name, v in summary.items():
        cells = "".join(f"<td class='{'best' if v.get(k) is not None and v.get(k) == best[k] else ''}'>"
                        f"{_fmt(v.get(k))}</td>" for k in keys)
        cells += "".join(f"<td>{html.escape(col.get(name, ''))}</td>" for col in extra.values())
        body += f"<tr><td>{html.escape(label(name))}</td>{cells}</tr>"
    return f"<table><tr><th>method</th>{head}</tr>{body}</table>"


def periodic_peak(v: dict) -> str:
    """``"max 21.3 dB at starry-night: period 4.0 px, 0°"``, or '' without a score."""
    if v.get("periodic_max_db") is None:
        return ""
    return (f"max {v['periodic_max_db']:.1f} dB at {v['periodic_worst']}: period {v['periodic_period_px']:.1f} px, "
            f"{v['periodic_angle_deg']}°")


def _sheets(out: Path, cell: dict, columns: dict[str, list[str]], content_names: list[str], contents: dict,
            styles: dict, own: dict[str, dict], summary: dict) -> list[tuple[str, str]]:
    """One sheet per row, and the method-by-method sheet of the grid's rows. An onnxruntime row whose
    cells match its torch row's (PSNR ≥ 40 dB: the export bar) gets none: the torch row's shows it."""
    sheets = []
    columns = {m: c for m, c in columns.items() if summary[m].get("psnr_vs_torch", 0) < SAME_PSNR}
    for method, style_names in columns.items():  # one sheet per row: photos down, its paintings across
        pics = own.get(method, styles)
        grid = [[None] + [pics[s] for s in style_names]]
        for c in content_names:
            grid.append([contents[c]] + [read_image(out / cell[(method, c, s)]["image"])[0] for s in style_names])
        name = f"sheet_{method}.jpg"  # sheets are JPEG (they are committed in docs/report)
        contact_sheet(grid, row_labels=["styles"] + content_names, col_labels=["photo"] + style_names, cell=200,
                      title=label(method)).save(out / name, quality=88)
        sheets.append((label(method), name))
    on_grid = [m for m in columns if m not in own]
    if len(on_grid) > 1:  # method by method: the diagonal pairs (photo i with style i)
        pairs = list(zip(content_names, list(styles)))
        grid = [[contents[c], styles[s]] + [read_image(out / cell[(m, c, s)]["image"])[0] for m in on_grid]
                for c, s in pairs]
        contact_sheet(grid, row_labels=[f"{c} x {s}" for c, s in pairs],
                      col_labels=["photo", "style", *map(label, on_grid)],
                      cell=200, title="method by method").save(out / "sheet_methods.jpg", quality=88)
        sheets.append(("method by method", "sheet_methods.jpg"))
    return sheets


def write_report(out: Path, rows: list[dict], summary: dict, columns: dict[str, list[str]], contents: dict,
                 styles: dict, own: dict, settings: dict, skipped: dict | None = None,
                 photos_periodic: dict | None = None) -> Path:
    """Write ``out/index.html`` with its sheets and plots; returns its path. ``columns``: each row's
    paintings: the grid's (``styles``), or for a row in ``own`` (the gallery's) its own pictures."""
    from .evaluate import CELL_METRICS, LOWER_IS_BETTER

    cell = {(r["method"], r["content"], r["style"]): r for r in rows}
    content_names, methods = list(contents), list(columns)
    sheets = _sheets(out, cell, columns, content_names, contents, styles, own, summary)
    bench_rows = json.loads((out / "bench.json").read_text()) if (out / "bench.json").exists() else None
    plots = _plots(out, rows, summary, bench_rows)
    curves = []
    for png in sorted(WEIGHTS_DIR.glob("*.curves.png")):  # training curves shipped beside the weights
        shutil.copyfile(png, out / png.name)
        curves.append(png.name)

    keys = [*CELL_METRICS, "diversity", "periodic_db"]
    per_cell = "".join(
        f"<tr><td>{html.escape(label(r['method']))}</td><td>{html.escape(r['content'])}</td>"
        f"<td>{html.escape(r['style'])}</td>" + "".join(f"<td>{r[k]:.4g}</td>" for k in CELL_METRICS) + "</tr>"
        for r in rows)
    grid_rows = [m for m in methods if m not in own]
    photo_score = (f" The photos themselves score {photos_periodic['periodic_db']:.1f} dB." if photos_periodic else "")
    crop = next((v["periodic_crop"] for v in summary.values() if v.get("periodic_crop")), None)
    parts = [f"<!doctype html><meta charset='utf-8'><title>huafeng evaluation</title><style>{_CSS}</style>",
             "<h1>huafeng evaluation</h1>",
             f"<p>{len(content_names)} photos × {len(styles)} styles × {len(grid_rows)} method(s) at "
             f"{settings['size']} px" + (f", and {len(methods) - len(grid_rows)} row(s) on their own paintings"
                                        if len(grid_rows) < len(methods) else "")
             + f"; metrics on the {html.escape(settings['metric_backbone'])} backbone. "
             "Content metrics compare the result with the photo (SSIM and edge SSIM: higher keeps more; "
             "content and perceptual distance: lower keeps more); style metrics compare it with the painting "
             "(Gram, mean/std and colour-histogram distances: lower is closer). Diversity: mean pairwise "
             "perceptual distance between one photo's results across styles. Seconds and peak RSS are per "
             "image, warm. Best per column in bold.</p>",
             "<p><b>periodic_db</b> (lower is cleaner): how strongly a row adds one fixed-period pattern (grid, "
             "hatching, checkerboard) to every picture (<code>huafeng.metrics.periodic_score</code>: the mean "
             "high-pass power spectrum of one painting's results over the photos"
             + (f", centre crops of {crop} px" if crop else "") + ", its largest peak over the local median), "
             "averaged over the row's paintings; the peak column names the worst painting and the pattern's "
             "period. A fixed-period grid or hatching scores 17–25 dB, a clean stylizer about 8 at 8 photos "
             "(fewer photos score a little higher); the bar for shipped networks is 10 dB." + photo_score
             + "</p>",
             "<h2>Means per method</h2>",
             _table(summary, keys, LOWER_IS_BETTER, {"periodic peak": {m: periodic_peak(v) for m, v in summary.items()}})]
    parts += [f"<p><b>{html.escape(label(m))}:</b> {html.escape(v['note'])}</p>" for m, v in summary.items()
              if v.get("note")]
    parts += [f"<p><b>{html.escape(label(m))}:</b> {html.escape(note)}</p>" for m, note in (skipped or {}).items()]
    parts += _runtimes(summary)
    for m in methods:
        if m in own:  # the gallery block: each network on its own painting
            per = summary[m]["per_style"]
            parts += [f"<h2>{html.escape(label(m))}: each network on its own painting</h2>",
                      _table(per, ["ssim", "edge_ssim", "gram_distance", "color_distance", "seconds", "periodic_db"],
                             LOWER_IS_BETTER, {"period (px), angle": {
                                 k: (f"{v['periodic_period_px']:.1f}, {v['periodic_angle_deg']}°"
                                     if v.get("periodic_db") is not None else "") for k, v in per.items()}})
                      .replace("<th>method</th>", "<th>style</th>", 1)]
    for title, name in sheets:
        parts += [f"<h2>Contact sheet: {html.escape(title)}</h2>", f"<img src='{name}' alt='{html.escape(title)}'>"]
    parts += ["<h2>Plots</h2>"] + [f"<img src='{p}' alt='{p}'>" for p in plots]
    if not bench_rows:
        parts.append("<p>No cost-vs-resolution data: run <code>huafeng bench -o OUT</code> to add it.</p>")
    if curves:
        parts += ["<h2>Training curves of the shipped models</h2>"] + [f"<img src='{c}' alt='{c}'>" for c in curves]
    parts += ["<details><summary>Every cell</summary><table><tr><th>method</th><th>photo</th><th>style</th>"
              + "".join(f"<th>{k}</th>" for k in CELL_METRICS) + f"</tr>{per_cell}</table></details>",
              "<p>Also: <a href='metrics.csv'>metrics.csv</a>, <a href='metrics.json'>metrics.json</a>.</p>"]
    path = out / "index.html"
    path.write_text("\n".join(parts))
    return path


def _runtimes(summary: dict) -> list[str]:
    """The onnxruntime rows against their torch rows: PSNR of the same cells, and the time."""
    lines = []
    for m, v in summary.items():
        if "psnr_vs_torch" in v:
            base = summary[split_name(m)[0]]
            lines.append(f"<tr><td>{html.escape(label(m))}</td><td>{v['psnr_vs_torch']:.1f}</td>"
                         f"<td>{v['seconds']:.3g}</td><td>{base['seconds']:.3g}</td></tr>")
    if not lines:
        return []
    return ["<h2>onnxruntime against torch</h2><p>PSNR of each cell against the torch row's same cell (8-bit "
            f"PNGs), and mean seconds per image. A row at {SAME_PSNR:.0f} dB or more (the export's parity bar) "
            "gets no contact sheet of its own: it looks like its torch row's.</p><table><tr><th>row</th><th>PSNR vs torch (dB)</th>"
            "<th>seconds</th><th>torch seconds</th></tr>" + "".join(lines) + "</table>"]
