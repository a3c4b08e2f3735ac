"""Serving speed: product-page queries against the floor of a trivial endpoint, in one run.

    uv run python -m benchmarks.api_bench [--requests 2000] [--concurrency 8]

Starts `contentapi serve` on 127.0.0.1 with a fresh SQLite database holding the seed content,
sends a fixed number of requests from a thread pool, and stops the server. Reports requests
per second and median / 95th-percentile latency for /healthz (the floor: HTTP and the event
loop, no GraphQL, no database) and for the ProductPage operation, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx

OPERATIONS = Path(__file__).resolve().parent.parent / "schema" / "operations"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(name: str, send: object, requests: int, concurrency: int) -> tuple[float, float, float]:
    def timed(_: int) -> float:
        started = time.perf_counter()
        send()  # type: ignore[operator]
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(timed, range(requests)))
    elapsed = time.perf_counter() - started
    rate = requests / elapsed
    median = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95)] * 1000
    print(f"{name:<12} {rate:8.0f} req/s   median {median:6.1f} ms   p95 {p95:6.1f} ms")
    return rate, median, p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    query = (OPERATIONS / "ProductPage.graphql").read_text()
    variables = json.loads((OPERATIONS / "ProductPage.variables.json").read_text())
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"CONTENT_API_DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start")
                    time.sleep(0.2)

                def health() -> None:
                    client.get("/healthz").raise_for_status()

                def product_page() -> None:
                    response = client.post(
                        "/graphql", json={"query": query, "variables": variables}
                    )
                    response.raise_for_status()
                    if "errors" in response.json():
                        raise SystemExit(response.text)

                product_page()  # warm: the release is read once per process
                print(
                    f"{args.requests} requests each, {args.concurrency} at a time, "
                    "one server process"
                )
                floor, _, _ = measure("/healthz", health, args.requests, args.concurrency)
                page, _, _ = measure("productPage", product_page, args.requests, args.concurrency)
                print(f"productPage / floor = {page / floor:.3f}")
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
