"""A mixed partner workload held through one production worker: no errors, no memory growth.

    scripts/load [--duration 60] [--database sqlite] [--snippets 2000] [--connections 16]
                 [--mix 50,25,20,5] [--max-requests 1000000] [--markdown]

Seeds and publishes the generated snippets, starts `contentapi serve --workers 1` in
production on 127.0.0.1 (pinned to core 0, wrk to core 1), as benchmarks/bench.py does, and
runs one wrk for `--duration` seconds (or until `--max-requests` answers) sending, interleaved
by weight: cached persisted GETs of one product page, 304 revalidations of it, uncached product
pages (a new cache key each) and the change feed (`changes(since: 0)`, its first page of 100).
The worker's resident memory is read every second.

It reports throughput, p50, p99, the errors and the memory, and exits 1 when any request
failed or when the memory grew by 10% or more after the warm-up (the first 10 s).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from benchmarks.bench import (
    LOCALES,
    MARKET,
    BenchError,
    Catalog,
    Form,
    Measurement,
    Partner,
    Pinning,
    Plan,
    Server,
    UncachedPages,
    authorised_client,
    database,
    discover_form,
    find_wrk,
    has_data,
    learn_partner,
    machine,
    positive,
    publish_seed,
    rss_mb,
    run_wrk,
    service,
    snippet_count,
    stop_on_signals,
    write_seed,
)

KINDS = ("cached", "revalidate", "uncached", "changes")
WARM_UP_S = 10.0
GROWTH_LIMIT = 0.10
CHANGES_VARIABLES = {"since": 0, "locale": LOCALES[0], "market": MARKET}


def interleaved(weights: dict[str, int]) -> list[str]:
    """One cycle of the kinds, each as often as its weight, spread evenly (the smooth weighted
    round robin of nginx): 50/25/20/5 gives a cycle of 100 with no long run of one kind."""
    total = sum(weights.values())
    current = dict.fromkeys(weights, 0)
    cycle = []
    for _ in range(total):
        for kind, weight in weights.items():
            current[kind] += weight
        chosen = max(current, key=lambda kind: current[kind])
        current[chosen] -= total
        cycle.append(chosen)
    return cycle


def mix_of(text: str) -> dict[str, int]:
    try:
        weights = [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("give four whole numbers, e.g. 50,25,20,5") from exc
    if len(weights) != len(KINDS) or any(w < 0 for w in weights) or not any(weights):
        raise argparse.ArgumentTypeError(
            f"give {len(KINDS)} weights, not negative, for {', '.join(KINDS)}: e.g. 50,25,20,5"
        )
    return {kind: weight for kind, weight in zip(KINDS, weights, strict=True) if weight}


class MemorySampler:
    """Reads the worker's resident memory every second, in a thread, while wrk runs."""

    def __init__(self, server: Server, interval: float = 1.0) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pid = self.server.worker_pid()
        started = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - started, rss_mb(pid)))
            if self._stop.wait(self.interval):
                return


@dataclass(frozen=True)
class Memory:
    start_mb: float
    warm_mb: float  # at the end of the warm-up
    end_mb: float
    peak_mb: float
    every_10_s: list[float]  # the trend, for a person to read

    @property
    def growth(self) -> float:
        return (self.end_mb - self.warm_mb) / self.warm_mb

    @classmethod
    def of(cls, samples: list[tuple[float, float]], warm_up: float) -> Memory:
        after = [mb for at, mb in samples if at >= warm_up and not math.isnan(mb)]
        if len(after) < 2:
            raise BenchError(
                f"the run ended before two memory samples after the {warm_up:g} s warm-up "
                "(was --max-requests reached early?)"
            )
        trend = [samples[i][1] for i in range(0, len(samples), 10)]
        return cls(samples[0][1], after[0], after[-1], max(mb for _, mb in samples), trend)


def learn_changes(server: Server, partner: Partner) -> Form:
    with authorised_client(server.base, partner.key) as client:
        form = discover_form(client, "ChangesSince", CHANGES_VARIABLES)
        answer = client.get(form.path(CHANGES_VARIABLES))
        if not has_data(answer):
            raise BenchError(f"changes failed: {answer.status_code} {answer.text[:500]}")
    return form


def plan(
    partner: Partner,
    changes: Form,
    server: Server,
    catalog: Catalog,
    weights: dict[str, int],
    max_requests: int,
) -> Plan:
    port = server.port
    page = partner.form.path(partner.variables)
    # without an ETag yet, a revalidation is the same GET without If-None-Match
    etag = partner.etag if partner.revalidates else None
    return Plan(
        interleaved(weights),
        fixed={
            "cached": {"path": page, "headers": partner.headers(port)},
            "revalidate": {"path": page, "headers": partner.headers(port, etag=etag)},
            "changes": {"path": changes.path(CHANGES_VARIABLES), "headers": partner.headers(port)},
        },
        uncached=UncachedPages(catalog).spec(partner, port),
        max_requests=max_requests,
    )


def report(
    args: argparse.Namespace,
    pinning: Pinning,
    partner: Partner,
    changes: Form,
    result: Measurement,
    memory: Memory,
) -> list[str]:
    """Print the outcome; return what failed."""
    failures = []
    if result.errors:
        failures.append(f"{result.errors} requests failed")
    if memory.growth >= GROWTH_LIMIT:
        failures.append(
            f"the worker's memory grew {memory.growth:.1%} after the warm-up "
            f"(limit {GROWTH_LIMIT:.0%})"
        )
    mix = "/".join(str(w) for w in args.mix.values()) + " " + ", ".join(args.mix)
    statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(result.statuses.items()))
    print(
        f"\n{result.requests:,} requests in {result.seconds:.1f} s: {result.rate:,.0f} req/s, "
        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms\n"
        f"statuses {statuses}; errors {result.errors} (socket {result.socket_errors}, "
        f"GraphQL {result.graphql_errors})\n"
        f"worker RSS: {memory.start_mb:.1f} MB at the start, {memory.warm_mb:.1f} MB after the "
        f"{args.warm_up:g} s warm-up, {memory.end_mb:.1f} MB at the end (peak "
        f"{memory.peak_mb:.1f} MB): {memory.growth:+.1%}; every 10 s: "
        + ", ".join(f"{mb:.0f}" for mb in memory.every_10_s)
        + " MB"
    )
    if result.requests >= args.max_requests:
        print(
            f"stopped at --max-requests {args.max_requests:,}: wrk counts the whole duration, "
            "so req/s is understated"
        )
    print("targets met" if not failures else "targets missed:\n  " + "\n  ".join(failures))
    if args.markdown:
        revalidation = "304" if partner.revalidates else "no ETag yet: sent as plain GETs"
        print(
            f"\nMeasured {date.today().isoformat()} on {machine()}; {args.snippets:,} snippets, "
            f"{args.connections} connections, {pinning.note}; mix {mix}; product page as "
            f"{partner.form.note}, change feed as {changes.label}; revalidations: "
            f"{revalidation}.\n\n"
            "| database | duration | requests | req/s | p50 | p99 | errors | statuses "
            "| worker RSS after warm-up → end (peak) | growth |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n"
            f"| {args.database} | {result.seconds:.0f} s | {result.requests:,} | "
            f"{result.rate:,.0f} | {result.p50_ms:.2f} ms | {result.p99_ms:.2f} ms | "
            f"{result.errors} | {statuses} | {memory.warm_mb:.1f} → {memory.end_mb:.1f} MB "
            f"({memory.peak_mb:.1f}) | {memory.growth:+.1%} |"
        )
    return failures


def load(args: argparse.Namespace) -> list[str]:
    wrk = find_wrk()
    pinning = Pinning.detect()
    print(f"{machine()}; {pinning.note}; wrk at {wrk}")
    with tempfile.TemporaryDirectory(prefix="contentapi-load-") as tmp:
        folder = Path(tmp)
        catalog = Catalog(write_seed(folder / "seed", args.snippets))
        print(f"seeding {args.snippets} snippets into {args.database} ...", flush=True)
        with database(args.database, folder) as url:
            key = publish_seed(url, folder / "seed")
            with service(pinning, url, folder / "serve.log") as server:
                partner = learn_partner(server, key, catalog)
                changes = learn_changes(server, partner)
                print(
                    f"product page as {partner.form.note}; change feed as {changes.note}; "
                    f"{'ETag and 304' if partner.revalidates else 'no ETag yet'}; "
                    f"{args.duration:g} s at {args.connections} connections ...",
                    flush=True,
                )
                work = plan(partner, changes, server, catalog, args.mix, args.max_requests)
                with MemorySampler(server) as sampler:
                    result = run_wrk(
                        wrk, pinning, server, work, folder,
                        connections=args.connections, duration=args.duration,
                    )  # fmt: skip
                memory = Memory.of(sampler.samples, args.warm_up)
    return report(args, pinning, partner, changes, result, memory)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=positive, default=60.0, help="seconds (default 60)")
    parser.add_argument("--warm-up", type=positive, default=WARM_UP_S, help="seconds (10)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--snippets", type=snippet_count, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--mix", type=mix_of, default="50,25,20,5", help="weights of " + ", ".join(KINDS)
    )
    parser.add_argument(
        "--max-requests", type=int, default=1_000_000, help="stop after this many answers"
    )
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args()
    if args.duration < args.warm_up + 2:
        parser.error("--duration must be at least the warm-up plus 2 s")
    if args.connections < 1 or args.max_requests < 1:
        parser.error("--connections and --max-requests must be 1 or more")
    stop_on_signals()
    try:
        failures = load(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: server stopped, temporary files and database removed")
        sys.exit(130)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
