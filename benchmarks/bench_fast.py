"""Benchmark the fast per-style network: warm stylize time at 1024x1024, 512x512 and 640x360 (median
of several runs), parameters and GFLOP, channels-last against the default layout, and the
trainer's time per step and crops per second, and the periodic-artifact score of every shipped
style (or of --style). Prints markdown tables.

    python benchmarks/bench_fast.py [--style NAME_OR_FILE] [--threads 2] [--repeats 7] [--periodic 8]
    python benchmarks/bench_fast.py --style starry-night --periodic 2 --periodic-only   # a smoke run

Without --style an untrained network of the default shape is timed (the speed does not depend
on the weights). The machines are shared: the CPU-time column (process time divided by threads)
is what the run would take on idle cores; wall time is what it took.

The periodic score (``huafeng.metrics.periodic_score``: a fixed-period grid, hatching or checkerboard
that a network adds to every picture; the bar for shipped networks is 10 dB) is taken over each
network's results on the trainers' held-out photos (``huafeng.train.common.split_photos``: the first
``--periodic`` of ``$HUAFENG_DATA/content``, else ``../shared/data/content``, else the Kodak photos
bundled in the package) at ``--periodic-size`` px; ``--periodic 0`` skips it.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import torch


def gflop(net, x) -> float:
    """Multiply-adds x 2 of every convolution for input ``x`` (the rest is elementwise)."""
    total = [0]

    def hook(m, inp, out):
        total[0] += 2 * out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        net(x)
    for h in hs:
        h.remove()
    return total[0] / 1e9


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall s, median process-CPU s / threads) over ``repeats`` runs after one warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append((time.process_time() - c0) / torch.get_num_threads())
    return statistics.median(wall), statistics.median(cpu)


def inference(net, style: str | None, repeats: int) -> list[dict]:
    """The whole ``FastStylizer.stylize`` call with a weights file (controls included), else the network."""
    from huafeng.methods.fast import FastStylizer

    st = FastStylizer()
    rows = []
    for w, h in [(1024, 1024), (512, 512), (640, 360)]:
        x = torch.rand(1, 3, h, w)
        run = (lambda: st.stylize(x, [style])) if style else (lambda: st._run(net, x))
        with torch.inference_mode():
            wall, cpu = timed(run, repeats)
            cl = net.to(memory_format=torch.channels_last)
            xc = x.contiguous(memory_format=torch.channels_last)
            wall_cl, _ = timed(lambda: cl(xc), repeats)
            net.to(memory_format=torch.contiguous_format)
        rows.append({"size": f"{w}x{h}", "wall": wall, "cpu": cpu, "cl": wall_cl, "gflop": gflop(net, x)})
    return rows


def training(steps: int) -> dict:
    """Seconds per step of the trainer's inner loop (defaults: batch, crop, loss), data in memory."""
    from huafeng.features import FeatureExtractor
    from huafeng.losses import gram_matrix, total_variation
    from huafeng.methods.fast import NetConfig, TransformerNet
    from huafeng.train.style import CONTENT_LAYERS, StyleTrainSettings, style_losses

    s = StyleTrainSettings(painting="", content_dir="")
    net = TransformerNet(NetConfig(tuple(s.channels), s.res_blocks))
    fe = FeatureExtractor("lite0", tuple(s.style_layers) + CONTENT_LAYERS)
    with torch.no_grad():
        sf = fe(torch.rand(1, 3, s.style_size, s.style_size), s.style_layers)
    targets = {n: gram_matrix(sf[n]) for n in s.style_layers}
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    gen = random.Random(0)

    def step():
        x = torch.rand(s.batch, 3, s.crop, s.crop) * gen.uniform(0.5, 1)
        y = net(x)
        lc, ls = style_losses(fe, y, x, targets)
        loss = s.content_weight * lc + 1e3 * ls + s.tv_weight * total_variation(y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    wall, cpu = timed(step, steps)
    return {"batch": s.batch, "crop": s.crop, "wall": wall, "cpu": cpu}


def held_out_photos(n: int) -> list[Path]:
    """The trainers' first ``n`` held-out photos (the one split every trainer and benchmark uses)."""
    import huafeng
    from huafeng.train.common import split_photos

    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    data = Path(os.environ.get("HUAFENG_DATA", shared))
    folder = data / "content" if (data / "content").is_dir() else Path(huafeng.__file__).parent / "assets" / "train_photos"
    return split_photos(folder, n)[0]


def periodic(styles: list[str], n: int, size: int) -> list[dict]:
    """Each style's periodic score over its network's results on ``n`` held-out photos at ``size`` px."""
    from huafeng.image import load_image
    from huafeng.methods.fast import FastStylizer
    from huafeng.metrics import periodic_score

    photos = [load_image(p, size=size) for p in held_out_photos(n)]
    st, rows = FastStylizer(), []
    for style in styles:
        t0 = time.perf_counter()
        with torch.inference_mode():
            outs = [st.stylize(x, [style]) for x in photos]
        db, period, angle = periodic_score(outs)
        rows.append({"style": style, "photos": len(photos), "size": size, "periodic_db": db, "period_px": period,
                     "angle": round(angle) % 180, "s_per_photo": (time.perf_counter() - t0) / len(photos)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", help="a gallery name or a .safetensors file (default: an untrained network)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--periodic", type=int, default=8, metavar="N", help="held-out photos for the periodic score "
                    "of every shipped style, or of --style (default: 8; 0 skips it)")
    ap.add_argument("--periodic-size", type=int, default=512, help="long side of those photos (default: 512)")
    ap.add_argument("--periodic-only", action="store_true", help="only the periodic table (no timing)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    from huafeng.methods.fast import TransformerNet, gallery, load_net

    if args.periodic:
        styles = [args.style] if args.style else list(gallery())
        print(f"periodic score: {args.periodic} held-out photos at {args.periodic_size} px (bar: ≤ 10 dB)\n")
        print("| style | periodic score (dB) | peak period (px) | angle (°) | ≤ 10 dB | s / photo |\n|---|---|---|---|---|---|")
        for r in periodic(styles, args.periodic, args.periodic_size):
            print(f"| {r['style']} | {r['periodic_db']:.1f} | {r['period_px']:.1f} | {r['angle']} | "
                  f"{'yes' if r['periodic_db'] <= 10 else 'no'} | {r['s_per_photo']:.2f} |", flush=True)
        print()
    if args.periodic_only:
        return

    net = load_net(args.style) if args.style else TransformerNet().eval().requires_grad_(False)
    params = sum(p.numel() for p in net.parameters())
    print(f"fast network: {params:,} parameters; {args.threads} threads; medians of {args.repeats} warm runs\n")
    print("| size | GFLOP | wall (s) | CPU time / threads (s) | channels-last wall (s) |\n|---|---|---|---|---|")
    for r in inference(net, args.style, args.repeats):
        print(f"| {r['size']} | {r['gflop']:.1f} | {r['wall']:.3f} | {r['cpu']:.3f} | {r['cl']:.3f} |", flush=True)
    t = training(args.train_steps)
    print(f"\n| training (batch {t['batch']} x {t['crop']} px, Lite0 loss) | wall | CPU time / threads |\n|---|---|---|")
    print(f"| seconds per step | {t['wall']:.3f} | {t['cpu']:.3f} |")
    print(f"| crops per second | {t['batch'] / t['wall']:.1f} | {t['batch'] / t['cpu']:.1f} |")


if __name__ == "__main__":
    main()
