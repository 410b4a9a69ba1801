"""The demo under load: 1, 2, 4 and 8 clients at once, each sending colorize requests through
gradio_client to a freshly started server on the bundled model (no warm-up request).

    python benchmarks/bench_serving.py [--requests 40] [--concurrency-limits 1,2] [--json OUT]

For each setting of the demo's concurrency limit (requests computed at once,
COLORGAN_DEMO_CONCURRENCY) and each number of clients: requests per second, p50 and p95 latency,
errors, and the server's peak resident memory (VmHWM). The photos are scikit-image's samples at
512x512 and 768x512, grayscale, as a visitor would upload them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(limit: int, port: int) -> subprocess.Popen:
    env = {**os.environ, "COLORGAN_DEMO_CONCURRENCY": str(limit)}
    server = subprocess.Popen(
        [sys.executable, "-m", "colorgan_hub.cli", "demo", "--port", str(port)],
        env=env,
        cwd=tempfile.gettempdir(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server
        if server.poll() is not None:
            raise RuntimeError("the demo exited while starting")
        time.sleep(0.2)
    raise RuntimeError("the demo did not start within 120 s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def photos(folder: Path) -> list[Path]:
    from skimage import data

    paths = []
    for name, size in (("astronaut", (512, 512)), ("chelsea", (768, 512)), ("coffee", (768, 512)), ("rocket", (512, 768))):
        path = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).convert("L").resize(size, Image.Resampling.LANCZOS).save(path)
        paths.append(path)
    return paths


def load(port: int, clients: int, requests: int, uploads: list[Path]) -> dict:
    from gradio_client import Client, handle_file

    url = f"http://127.0.0.1:{port}/"
    pool_clients = [Client(url, verbose=False) for _ in range(clients)]
    latencies, errors = [], []

    def one(i: int):
        client = pool_clients[i % clients]
        start = time.perf_counter()
        try:
            client.predict(handle_file(str(uploads[i % len(uploads)])), 128, "bundled default", api_name="/colorize")
            latencies.append(time.perf_counter() - start)
        except Exception as err:  # counted, not raised: the table says how many
            errors.append(f"{type(err).__name__}: {err}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": requests,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "requests_per_s": len(latencies) / seconds,
        "p50_s": statistics.median(ordered) if ordered else float("nan"),
        "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else float("nan"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per row")
    parser.add_argument("--clients", default="1,2,4,8", help="numbers of concurrent clients")
    parser.add_argument("--concurrency-limits", default="1,2", help="the demo's concurrency limits to compare")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        uploads = photos(Path(folder))
        for limit in map(int, args.concurrency_limits.split(",")):
            for clients in map(int, args.clients.split(",")):
                port = free_port()
                server = start_server(limit, port)  # fresh for every row: the first requests meet a cold server
                try:
                    row = {
                        "limit": limit,
                        **load(port, clients, args.requests, uploads),
                        "peak_rss_mb": peak_rss_mb(server.pid),
                        "server_alive": server.poll() is None,
                    }
                finally:
                    server.terminate()
                    server.wait(timeout=30)
                rows.append(row)
                print(
                    f"limit {limit}, {clients} client(s): {row['requests_per_s']:.2f} requests/s, p50 {row['p50_s']:.2f} s, "
                    f"p95 {row['p95_s']:.2f} s, {row['errors']} error(s), peak RSS {row['peak_rss_mb']:.0f} MB, "
                    f"server {'up' if row['server_alive'] else 'DOWN'}",
                    flush=True,
                )
    print("\n| limit | clients | requests/s | p50 (s) | p95 (s) | errors | peak RSS (MB) |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['limit']} | {r['clients']} | {r['requests_per_s']:.2f} | {r['p50_s']:.2f} | {r['p95_s']:.2f} | {r['errors']} | {r['peak_rss_mb']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
