"""Load test of `huafeng serve` on loopback: N concurrent clients with mixed settings, each result
checked against the same request made alone.

Starts the server in a subprocess on a free 127.0.0.1 port (``--workers``, default 2, over the shared
models). First every distinct setting is sent once, alone, and its result kept (the *solo* result).
Then for each concurrency level N clients run at once, client i with setting i mod (number of
settings): photoreal and fast (gallery networks) through POST /v1/stylize, arbitrary and the GAN
through POST /v1/jobs (then polled and fetched), with different photos, styles, strengths, colour
modes and sizes (at most 256 px, to keep it cheap). Each client sends until it has sent --requests or
--seconds have passed, backing off on 429. Every result is compared with its setting's solo result.
Reports requests/s, results/s, p50/p95 latency, status counts, the results checked, their largest
difference from the solo result (in 1/255 levels) and how many differ by more than --tolerance, whether
the server still answers, and its resident and peak memory (VmRSS, VmHWM).

    python benchmarks/load_service.py --clients 50 --seconds 90 --requests 6
"""
from __future__ import annotations

import argparse
import asyncio
import io
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

# (endpoint, photo, upload side, form fields): every setting is distinct; the sizes stay <= 256 px
SETTINGS = [
    ("stylize", "parrots", 256, {"method": "photoreal", "style": "udnie", "size": "128"}),
    ("stylize", "cat", 256, {"method": "photoreal", "style": "great-wave", "size": "192", "strength": "0.6",
                             "preserve_color": "luminance"}),
    ("stylize", "parrots", 256, {"method": "fast", "style": "starry-night", "size": "160"}),
    ("stylize", "cat", 256, {"method": "fast", "style": "the-scream", "size": "256", "strength": "0.5"}),
    ("stylize", "cat", 256, {"method": "auto", "style": "mondrian", "size": "224", "preserve_color": "histogram"}),
    ("jobs", "parrots", 256, {"method": "arbitrary", "style": "water-lilies", "size": "128", "strength": "0.8"}),
    ("jobs", "cat", 256, {"method": "gan", "model": "monet", "size": "160"}),
]


ERRORS: Counter = Counter()  # what the server said of each answer that was neither a result nor a 429


def label(setting) -> str:
    endpoint, photo, _, f = setting
    what = f.get("style") or f.get("model")
    extra = "".join(f", {k} {f[k]}" for k in ("strength", "preserve_color") if k in f)
    return f"{f['method']} {what} on {photo} at {f['size']} px{extra} ({endpoint})"


def photo_png(name: str, side: int) -> bytes:
    from huafeng.image import load_image, to_pil
    from huafeng.styles import sample_photo

    buf = io.BytesIO()
    to_pil(load_image(sample_photo(name), size=side)).save(buf, format="PNG")
    return buf.getvalue()


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def proc_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def request(http, setting, body: bytes, deadline: float) -> tuple[list, bytes | None]:
    """One stylization: (statuses seen: "200", or "job 202" then "result 200" for a job; the result PNG or None)."""
    endpoint, _, _, fields = setting
    r = await http.post(f"/v1/{endpoint}", files={"content": ("p.png", body, "image/png")}, data=fields)
    if endpoint == "stylize":
        if r.status_code not in (200, 429):
            ERRORS[f"{r.status_code}: {r.json().get('error', '')[:100]}"] += 1
        return [str(r.status_code)], (r.content if r.status_code == 200 else None)
    if r.status_code != 202:
        return [f"job {r.status_code}"], None
    job = r.json()["id"]
    while True:  # a job: poll until it ends, then fetch its result
        j = (await http.get(f"/v1/jobs/{job}")).json()
        if j["status"] not in ("queued", "running"):
            break
        if time.monotonic() > deadline + 120:
            await http.delete(f"/v1/jobs/{job}")
            return ["job 202", "job timeout"], None
        await asyncio.sleep(0.1)
    if j["status"] != "done":
        ERRORS[f"job {j['status']}: {(j.get('error') or '')[:100]}"] += 1
        return ["job 202", f"job {j['status']}"], None
    res = await http.get(f"/v1/jobs/{job}/result")
    return ["job 202", f"result {res.status_code}"], (res.content if res.status_code == 200 else None)


async def solo_results(url: str, bodies: dict) -> list[np.ndarray]:
    import httpx

    out = []
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        for s in SETTINGS:
            t0 = time.monotonic()
            codes, png = await request(http, s, bodies[s[1]], time.monotonic() + 300)
            if png is None:
                raise SystemExit(f"the solo request {label(s)} failed: {codes}")
            out.append(pixels(png))
            print(f"solo: {label(s)}: {out[-1].shape[1]}x{out[-1].shape[0]} in {time.monotonic() - t0:.2f} s",
                  file=sys.stderr, flush=True)
    return out


async def run_level(url: str, clients: int, seconds: float, per_client: int, bodies: dict, solo: list,
                    tolerance: int) -> dict:
    import httpx

    latencies, codes, diffs, by_setting = [], Counter(), [], Counter()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(base_url=url, timeout=seconds + 180, limits=limits) as http:
        async def client(i: int) -> None:
            k = i % len(SETTINGS)
            s = SETTINGS[k]
            for _ in range(per_client):
                if time.monotonic() > deadline:
                    return
                t0 = time.monotonic()
                try:
                    seen, png = await request(http, s, bodies[s[1]], deadline)
                except httpx.HTTPError as e:
                    seen, png = [type(e).__name__], None
                latencies.append(time.monotonic() - t0)
                for c in seen:
                    codes[c] += 1
                if png is not None:
                    got = pixels(png)
                    d = 999 if got.shape != solo[k].shape else int(np.abs(got - solo[k]).max())
                    diffs.append(d)
                    by_setting[k] += 1
                if seen[0].endswith("429"):
                    await asyncio.sleep(1.0)

        t0 = time.monotonic()
        await asyncio.gather(*(client(i) for i in range(clients)))
        wall = time.monotonic() - t0
    lat = sorted(latencies)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    return {"clients": clients, "requests": len(lat), "wall_s": round(wall, 1), "req_per_s": round(len(lat) / wall, 1),
            "ok_per_s": round(len(diffs) / wall, 2), "p50_s": round(pick(0.5), 2), "p95_s": round(pick(0.95), 2),
            "codes": dict(codes), "checked": len(diffs), "settings_checked": len(by_setting),
            "max_diff": max(diffs, default=0), "mismatches": sum(d > tolerance for d in diffs),
            "exact": sum(d == 0 for d in diffs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="50", help="concurrency levels, comma-separated")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--requests", type=int, default=6, help="at most this many requests per client")
    ap.add_argument("--workers", type=int, default=2, help="the server's --workers (jobs run at once)")
    ap.add_argument("--tolerance", type=int, default=0,
                    help="a result differing from its solo result by more than this (in 1/255) is a mismatch")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = Path(tempfile.mkdtemp(prefix="huafeng-load-"))
    server = subprocess.Popen([sys.executable, "-m", "huafeng.cli", "serve", "--port", str(port), "--results",
                               str(results / "results"), "--results-cap-mb", "50", "--workers", str(args.workers)],
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        bodies = {name: photo_png(name, side) for _, name, side, _ in SETTINGS}
        solo = asyncio.run(solo_results(url, bodies))
        rss_solo = round(proc_mb(server.pid, "VmRSS"))
        for n in [int(x) for x in args.clients.split(",")]:
            row = asyncio.run(run_level(url, n, args.seconds, args.requests, bodies, solo, args.tolerance))
            try:
                row["alive"] = httpx.get(url + "/v1/health", timeout=10).status_code == 200
            except httpx.HTTPError:
                row["alive"] = False
            row["rss_mb"] = round(proc_mb(server.pid, "VmRSS"))
            row["peak_rss_mb"] = round(proc_mb(server.pid, "VmHWM"))
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(10)
        import shutil

        shutil.rmtree(results, ignore_errors=True)
        results.with_name(results.name + ".jobs.db").unlink(missing_ok=True)
    print(f"\n{len(SETTINGS)} settings, server with --workers {args.workers}; RSS after the solo requests: {rss_solo} MB")
    for i, s in enumerate(SETTINGS):
        print(f"  {i}: {label(s)}")
    print("\n| clients | requests | req/s | results/s | p50 (s) | p95 (s) | status counts | results checked "
          "(settings) | max diff from solo (/255) | mismatches | server up after | server RSS after (MB) | "
          "server peak RSS (MB) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(r["codes"].items()))
        print(f"| {r['clients']} | {r['requests']} | {r['req_per_s']} | {r['ok_per_s']} | {r['p50_s']} | {r['p95_s']} | "
              f"{codes} | {r['checked']} ({r['settings_checked']}) | {r['max_diff']} | {r['mismatches']} | "
              f"{'yes' if r['alive'] else 'no'} | {r['rss_mb']} | {r['peak_rss_mb']} |")
    if ERRORS:
        print("\nanswers other than a result or a 429:")
        for e, n in ERRORS.most_common():
            print(f"  {n} x {e}")
    if any(r["mismatches"] or not r["alive"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
