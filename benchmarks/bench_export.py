"""Deployment benchmark: torch fp32 vs ONNX fp32 / int8 (onnxruntime) vs ExecuTorch fp32 / int8 (.pte,
XNNPACK; when huafeng[mobile] is installed) on the CPU, for each model kind.

For each model: seconds per picture at 512 and 1024 px (square, best of --repeats after a warm-up,
same thread count for torch and onnxruntime), model file size, and PSNR / max abs difference of the
result against torch's. Exports go through the library's checked path (huafeng.export), into a
temporary cache. Prints one markdown table per model.

    python benchmarks/bench_export.py [--fast FILE] [--gan FILE] [--no-photoreal] [--no-arbitrary]
                                      [--runtimes torch,onnx,onnx-int8,pte,pte-int8] [--threads 2]

A .pte program takes one picture size, so it is exported (and checked) at each size benchmarked.

Without --fast / --gan the first shipped network of that kind is used, else a randomly initialised
one of the default architecture (speed does not depend on the weights; int8 PSNR does: the table
says which was used).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # nets.py: seeded random networks


def _models(args, tmp: Path) -> list[tuple[str, str, str, str]]:
    """(kind, label, reference, weights note) per model kind."""
    from huafeng.methods import fast

    out = []
    fast_ref = args.fast or next(iter(fast.gallery().values()), None)
    if fast_ref is None:
        from nets import random_fast_net

        fast_ref, note = random_fast_net(tmp / "fast-random.safetensors"), "random weights (no network shipped)"
    else:
        note = f"trained: {Path(fast_ref).name}"
    out.append(("fast", "per-style network", str(fast_ref), note))
    try:
        from huafeng.methods import gan
    except ImportError:
        gan = None
    if gan is not None:
        gan_ref = args.gan or next(iter(gan.gallery().values()), None)
        if gan_ref is None:
            from huafeng.methods.gan import Generator, GeneratorConfig, generator_metadata
            from huafeng.weights import save_file

            torch.manual_seed(0)
            gan_ref = tmp / "gan-random.safetensors"
            save_file(Generator(GeneratorConfig()).state_dict(), gan_ref, generator_metadata(GeneratorConfig()))
            note = "random weights (no generator shipped)"
        else:
            note = f"trained: {Path(gan_ref).name}"
        out.append(("gan", "GAN generator", str(gan_ref), note))
    if not args.no_photoreal:
        out.append(("photoreal", "photoreal (encoder + Newton-Schulz WCT + decoders)", "photoreal", "shipped decoders"))
    if not args.no_arbitrary:
        out.append(("arbitrary", "arbitrary painting network (recolour + Lite0 + AdaIN + decoder + palette)", "arbitrary",
                    "shipped network"))
    return out


def _runtimes(arg: str | None) -> tuple[str, ...]:
    if arg:
        return tuple(r for r in arg.split(",") if r)
    try:
        import executorch.runtime  # noqa: F401
    except ImportError:
        return ("torch", "onnx", "onnx-int8")
    return ("torch", "onnx", "onnx-int8", "pte", "pte-int8")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", help="a per-style network .safetensors (default: the first shipped one)")
    p.add_argument("--gan", help="a GAN generator .safetensors (default: the first shipped one)")
    p.add_argument("--no-photoreal", action="store_true")
    p.add_argument("--no-arbitrary", action="store_true")
    p.add_argument("--only", help="comma-separated kinds to run (fast, gan, photoreal, arbitrary)")
    p.add_argument("--runtimes", help="comma-separated (default: torch, onnx, onnx-int8, and pte, pte-int8 "
                   "when ExecuTorch is installed)")
    p.add_argument("--sizes", default="512,1024")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from huafeng.errors import HuafengError
    from huafeng.export.bench import backends_table, bench_backends

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        os.environ["HUAFENG_CACHE"] = str(Path(tmp) / "cache")
        for kind, label, ref, note in _models(args, Path(tmp)):
            if args.only and kind not in args.only.split(","):
                continue
            runtimes, r = _runtimes(args.runtimes), None
            while r is None and runtimes:
                try:
                    r = bench_backends(ref, runtimes, [int(s) for s in args.sizes.split(",")], repeats=args.repeats)
                except HuafengError as e:  # e.g. an int8 program refused under its bar: say so, time the rest
                    print(f"\n{label}: {e}")
                    named = str(e).split(":", 1)[0]
                    dropped = named if named in runtimes else runtimes[-1]
                    runtimes = tuple(x for x in runtimes if x != dropped)
            if r is None:
                continue
            print(f"\n### {label}: {note}; {args.threads} threads\n")
            print(backends_table(r))
            sys.stdout.flush()
            rows += [{**row, "label": label, "weights": note} for row in r]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
