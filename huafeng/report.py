"""The HTML report of ``huafeng evaluate``: contact sheets, a metrics table, plots and training curves.

Plain HTML with relative links to PNGs beside it: it opens offline, from a file or a static server.
"""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from .image import read_image
from .sheet import contact_sheet
from .weights import WEIGHTS_DIR

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
.best{font-weight:bold;background:#eef8ee}details{margin:1em 0}"""


def _plots(out: Path, rows: list[dict], summary: dict, bench_rows: list[dict] | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for method in summary:
        mine = [r for r in rows if r["method"] == method]
        axes[0].scatter([r["seconds"] for r in mine], [r["gram_distance"] for r in mine], label=method, alpha=0.7)
        axes[1].scatter([r["seconds"] for r in mine], [r["ssim"] for r in mine], label=method, alpha=0.7)
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


def _table(summary: dict, keys: list[str], lower_better: set[str]) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    best = {}
    for k in keys:
        vals = [v[k] for v in summary.values()]
        best[k] = (min if k in lower_better else max)(vals) if len(vals) > 1 else None
    body = ""
    for method, v in summary.items():
        cells = "".join(f"<td class='{'best' if v[k] == best[k] else ''}'>{v[k]:.4g}</td>" for k in keys)
        body += f"<tr><td>{html.escape(method)}</td>{cells}</tr>"
    return f"<table><tr><th>method</th>{head}</tr>{body}</table>"


def write_report(out: Path, rows: list[dict], summary: dict, methods: list[str], content_names: list[str],
                 style_names: list[str], contents: dict, styles: dict, settings: dict) -> Path:
    """Write ``out/index.html`` with its sheets and plots; returns its path."""
    from .evaluate import CELL_METRICS, LOWER_IS_BETTER

    cell = {(r["method"], r["content"], r["style"]): r for r in rows}
    sheets = []
    for method in methods:  # one sheet per method: photos down, styles across
        grid = [[None] + [styles[s] for s in style_names]]
        for c in content_names:
            grid.append([contents[c]] + [read_image(out / cell[(method, c, s)]["image"])[0] for s in style_names])
        name = f"sheet_{method}.png"
        contact_sheet(grid, row_labels=["styles"] + content_names, col_labels=["photo"] + style_names, cell=200,
                      title=f"{method}").save(out / name)
        sheets.append((method, name))
    if len(methods) > 1:  # method by method: the diagonal pairs (photo i with style i)
        pairs = list(zip(content_names, style_names))
        grid = [[contents[c], styles[s]] + [read_image(out / cell[(m, c, s)]["image"])[0] for m in methods]
                for c, s in pairs]
        contact_sheet(grid, row_labels=[f"{c} x {s}" for c, s in pairs], col_labels=["photo", "style", *methods],
                      cell=200, title="method by method").save(out / "sheet_methods.png")
        sheets.append(("method by method", "sheet_methods.png"))
    bench_rows = json.loads((out / "bench.json").read_text()) if (out / "bench.json").exists() else None
    plots = _plots(out, rows, summary, bench_rows)
    curves = []
    for png in sorted(WEIGHTS_DIR.glob("*.curves.png")):  # training curves shipped beside the weights
        shutil.copyfile(png, out / png.name)
        curves.append(png.name)

    keys = [*CELL_METRICS, "diversity"]
    per_cell = "".join(
        f"<tr><td>{html.escape(r['method'])}</td><td>{html.escape(r['content'])}</td><td>{html.escape(r['style'])}</td>"
        + "".join(f"<td>{r[k]:.4g}</td>" for k in CELL_METRICS) + "</tr>" for r in rows)
    parts = [f"<!doctype html><meta charset='utf-8'><title>huafeng evaluation</title><style>{_CSS}</style>",
             "<h1>huafeng evaluation</h1>",
             f"<p>{len(content_names)} photos × {len(style_names)} styles × {len(methods)} method(s) at "
             f"{settings['size']} px; metrics on the {html.escape(settings['metric_backbone'])} backbone. "
             "Content metrics compare the result with the photo (SSIM and edge SSIM: higher keeps more; "
             "content and perceptual distance: lower keeps more); style metrics compare it with the painting "
             "(Gram, mean/std and colour-histogram distances: lower is closer). Diversity: mean pairwise "
             "perceptual distance between one photo's results across styles. Seconds and peak RSS are per "
             "image, warm. Best per column in bold.</p>",
             "<h2>Means per method</h2>", _table(summary, keys, LOWER_IS_BETTER)]
    parts += [f"<p><b>{html.escape(m)}:</b> {html.escape(v['note'])}</p>" for m, v in summary.items() if v.get("note")]
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
