"""Seeding at scale: N generated snippet files, first run and unchanged re-run, per database.

    uv run python -m benchmarks.seed_bench [--files 10000]

Each run is the real `contentapi seed` command in its own process; wall time is measured around
it and peak memory is the process's maximum resident set size (from wait4). The targets:
first run under 30 s, an unchanged re-run under a third of the first, peak memory under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from benchmarks.seedgen import generate
from service.db import upgrade_database

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
FIRST_RUN_LIMIT_S = 30.0
RERUN_RATIO_LIMIT = 1 / 3
PEAK_MB_LIMIT = 300.0


@dataclass
class Run:
    seconds: float
    peak_mb: float
    output: str


def run_seed(database_url: str, root: Path) -> Run:
    env = os.environ | {"CONTENT_API_DATABASE_URL": database_url}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "seed", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"seed failed:\n{output}")
    return Run(seconds, usage.ru_maxrss / 1024, output)


def measure(name: str, database_url: str, root: Path) -> tuple[Run, Run]:
    upgrade_database(database_url)
    first = run_seed(database_url, root)
    rerun = run_seed(database_url, root)
    assert "Nothing to write" in rerun.output, rerun.output
    print(
        f"{name:<11} first {first.seconds:6.2f} s  peak {first.peak_mb:6.1f} MB | "
        f"re-run {rerun.seconds:6.2f} s  peak {rerun.peak_mb:6.1f} MB | "
        f"re-run / first = {rerun.seconds / first.seconds:.2f}"
    )
    return first, rerun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "seed", args.files)
        print(f"{args.files} generated snippet files, plus the project's catalogs and disclaimers")
        results = {"sqlite": measure("sqlite", f"sqlite:///{tmp}/bench.db", root)}
        name = f"contentapi_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        try:
            url = f"postgresql://postgres@127.0.0.1:5432/{name}"
            results["postgresql"] = measure("postgresql", url, root)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
    for db, (first, rerun) in results.items():
        if first.seconds >= FIRST_RUN_LIMIT_S:
            failures.append(f"{db}: first run {first.seconds:.1f} s >= {FIRST_RUN_LIMIT_S} s")
        if rerun.seconds / first.seconds >= RERUN_RATIO_LIMIT:
            failures.append(f"{db}: re-run is {rerun.seconds / first.seconds:.2f} of the first")
        peak = max(first.peak_mb, rerun.peak_mb)
        if peak >= PEAK_MB_LIMIT:
            failures.append(f"{db}: peak memory {peak:.0f} MB >= {PEAK_MB_LIMIT:.0f} MB")
    print("targets met" if not failures else "targets missed:\n  " + "\n  ".join(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
