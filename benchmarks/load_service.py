"""Load test of `huafeng serve` on loopback: N concurrent clients, bounded in count and time.

Starts the server in a subprocess on a free 127.0.0.1 port, then for each concurrency level runs N
clients that each send POST /v1/stylize (a small photo, the fast method) until they have sent
--requests each or --seconds have passed. Reports requests/s, p50/p95 latency, status counts
(200 results, 429 queue full, 503/504) and the server's peak RSS (VmHWM).

    python benchmarks/load_service.py --clients 50,200 --seconds 30 --requests 20
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


def photo_png(side: int) -> bytes:
    from huafeng.image import load_image, to_pil
    from huafeng.styles import sample_photo

    buf = io.BytesIO()
    to_pil(load_image(sample_photo("parrots"), size=side)).save(buf, format="PNG")
    return buf.getvalue()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_level(url: str, clients: int, seconds: float, per_client: int, body: bytes, method: str) -> dict:
    import httpx

    latencies, codes = [], Counter()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=seconds + 60, limits=limits) as http:
        async def client() -> None:
            for _ in range(per_client):
                if time.monotonic() > deadline:
                    return
                t0 = time.monotonic()
                try:
                    r = await http.post("/v1/stylize", files={"content": ("p.png", body)},
                                        data={"style": "udnie", "method": method, "size": "128"})
                    codes[r.status_code] += 1
                    if r.status_code == 429:
                        await asyncio.sleep(min(float(r.headers.get("retry-after", 1)), 1.0))
                except httpx.HTTPError as e:
                    codes[type(e).__name__] += 1
                latencies.append(time.monotonic() - t0)

        t0 = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.monotonic() - t0
    lat = sorted(latencies)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    return {"clients": clients, "requests": len(lat), "wall_s": round(wall, 1), "req_per_s": round(len(lat) / wall, 1),
            "ok_per_s": round(codes[200] / wall, 2), "p50_s": round(pick(0.5), 3), "p95_s": round(pick(0.95), 3),
            "codes": dict(codes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="50,200")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--requests", type=int, default=20, help="at most this many requests per client")
    ap.add_argument("--method", default="photoreal")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = Path(os.environ.get("TMPDIR", "/tmp")) / f"huafeng-load-{port}"
    server = subprocess.Popen([sys.executable, "-m", "huafeng.cli", "serve", "--port", str(port), "--results",
                               str(results), "--results-cap-mb", "50"], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        body = photo_png(128)
        rows = []
        for n in [int(x) for x in args.clients.split(",")]:
            row = asyncio.run(run_level(url, n, args.seconds, args.requests, body, args.method))
            row["alive"] = httpx.get(url + "/v1/health", timeout=10).status_code == 200
            row["server_peak_rss_mb"] = round(peak_rss_mb(server.pid), 1)
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(10)
    print("\n| clients | requests | req/s | results/s | p50 (s) | p95 (s) | status counts | server up after | "
          "server peak RSS (MB) |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clients']} | {r['requests']} | {r['req_per_s']} | {r['ok_per_s']} | {r['p50_s']} | {r['p95_s']} | "
              f"{r['codes']} | {r['alive']} | {r['server_peak_rss_mb']} |")


if __name__ == "__main__":
    main()
