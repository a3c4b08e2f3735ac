"""Partner delivery speed: one production worker under wrk, against a floor measured in the run.

    scripts/bench [--snippets 2000] [--databases sqlite,postgresql] [--duration 5]
                  [--rounds 3] [--connections 16,64] [--markdown]

For each database it generates the snippets (half in en-US, half in fr-FR, ten to a product
page), seeds, approves and publishes them with the real `contentapi` commands, creates a
partner key, and starts `contentapi serve --workers 1` in production on 127.0.0.1, pinned to
core 0; wrk runs pinned to core 1. Measured, at each number of connections:

  floor       a raw ASGI callable (benchmarks/floor.py) under the same server, answering
              precomputed bytes of the product page's size
  cached      the same productPage, again and again, as a persisted GET (as Apollo sends it)
  304         the same GET with If-None-Match: the ETag of its first answer
  uncached    a different product page each request: every one a new cache key

Every scenario, the floor included, runs `--rounds` times, the scenarios taking turns, and
the best round of each counts: on a shared machine a slow spell then touches one round, not
one scenario. It reports requests/s, p50 and p99 of that round, each as a ratio to the floor's,
the errors of every round (any status but 200 or 304, a 200 carrying GraphQL errors, a socket
error or a timeout) and the worker's resident memory before the first round and after the
last. Servers, temporary files and the PostgreSQL
database are removed at the end, also on Ctrl-C or a failure; exit 1 if any request failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import psycopg
import yaml
from psycopg import sql

from benchmarks.seedgen import generate, snippet_text

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ROOT / "schema" / "operations"
CATALOG = ROOT / "seed" / "catalog"
# the console script, as deployed (`python -m service.cli` lacks the commands of its submodules)
CONTENTAPI = Path(sys.executable).with_name("contentapi")
LUA_SCRIPT = Path(__file__).resolve().parent / "partner.lua"
HOST = "127.0.0.1"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASES = ("sqlite", "postgresql")
LOCALES = ("en-US", "fr-FR")
MARKET = "US"
PAGE_SNIPPETS = 10  # snippets a product page shows: one product group
GROUP_FORMAT = "bench-group-%04d"  # the topic naming one product group, as Lua's string.format
# what Apollo Client 4 sends
ACCEPT = "application/graphql-response+json,application/json;q=0.9"
WRK_THREADS = 1  # wrk has one core to itself
WRK_TIMEOUT = "10s"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


# --- seed content ---------------------------------------------------------------------------


def catalog_keys(name: str) -> list[str]:
    """The keys of one catalog file of seed/catalog, in file order."""
    entries = yaml.safe_load((CATALOG / f"{name}.yaml").read_text(encoding="utf-8"))
    return [str(entry["key"]) for entry in entries]


def group_topic(group: int) -> str:
    return GROUP_FORMAT % group


def bench_snippet_text(n: int, locale: str) -> str:
    """benchmarks/seedgen.py's snippet `n`, in `locale`, about its product group's topic only.

    The generated snippets carry none of the catalog's topics or conditions, so that a product
    page naming its group's topic shows exactly that group's snippets, whatever else it names."""
    replaced = {
        "locale": locale,
        "topics": f"[{group_topic(n // PAGE_SNIPPETS)}]",
        "conditions": "[]",
    }
    head, front, body = snippet_text(n).split("---\n", 2)
    lines = []
    for line in front.splitlines():
        name = line.split(":", 1)[0]
        lines.append(f"{name}: {replaced[name]}" if name in replaced else line)
    return f"{head}---\n" + "\n".join(lines) + "\n---\n" + body


def write_seed(root: Path, snippets: int) -> int:
    """A seed folder of `snippets` snippet files: snippets / 2 keys, each in en-US and fr-FR,
    ten keys to a product group, each group with a topic of its own. Returns the group count."""
    keys = snippets // len(LOCALES)
    groups = math.ceil(keys / PAGE_SNIPPETS)
    generate(root, 0)  # the project's catalogs and disclaimers
    with (root / "catalog" / "topics.yaml").open("a", encoding="utf-8") as topics:
        for group in range(groups):
            topics.write(
                f"\n- key: {group_topic(group)}\n"
                f"  names: {{en-US: Product group {group}, fr-FR: Groupe de produits {group}}}\n"
            )
    folder = root / "snippets"
    for n in range(keys):
        for locale in LOCALES:
            (folder / f"generated-{n:05d}.{locale}.md").write_text(
                bench_snippet_text(n, locale), encoding="utf-8"
            )
    return groups


@dataclass(frozen=True)
class Catalog:
    """What the uncached product pages vary over."""

    groups: int
    topics: list[str] = field(default_factory=lambda: catalog_keys("topics"))
    concerns: list[str] = field(default_factory=lambda: catalog_keys("conditions"))
    # no category, or the one every generated snippet has (seedgen: supplement); another would
    # show an empty page
    categories: list[str] = field(default_factory=lambda: ["", "supplement"])

    def product_variables(self, group: int = 0) -> dict[str, Any]:
        """The cached page: one group's topic, the first category, in the first locale."""
        return {
            "product": {"category": self.categories[1], "topics": [group_topic(group)]},
            "market": MARKET,
            "locale": LOCALES[0],
        }

    @property
    def distinct_pages(self) -> int:
        return (
            self.groups
            * len(LOCALES)
            * len(self.categories)
            * (1 << len(self.topics))
            * (1 << len(self.concerns))
        )


# --- databases and the contentapi commands --------------------------------------------------


def clean_environment() -> dict[str, str]:
    """This process's environment without any CONTENT_API_ setting: the runs set their own."""
    return {
        name: value for name, value in os.environ.items() if not name.startswith("CONTENT_API_")
    }


def contentapi(database_url: str, *args: str, timeout: float = 900) -> str:
    """Run one `contentapi` command in development against `database_url`; return its output."""
    env = clean_environment() | {
        "CONTENT_API_ENV": "development",
        "CONTENT_API_DATABASE_URL": database_url,
    }
    try:
        done = subprocess.run(
            [str(CONTENTAPI), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`contentapi {args[0]}` took more than {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"`contentapi {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def publish_seed(database_url: str, seed: Path) -> str:
    """Migrate, seed, approve and publish `seed` as release 1; return a new partner key."""
    contentapi(database_url, "migrate")
    # the development shortcut: every revision approved by a named development reviewer
    contentapi(database_url, "seed", str(seed), "--approve")
    contentapi(database_url, "publish", "--note", "Benchmark content")
    output = contentapi(
        database_url,
        "keys", "create", "--partner", "bench", "--markets", "US,GB",
        "--locales", ",".join(LOCALES),
    )  # fmt: skip
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines or " " in lines[-1]:
        raise BenchError(f"`contentapi keys create` printed no key:\n{output}")
    return lines[-1]


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A new, empty database of `kind`; a PostgreSQL one is dropped on the way out."""
    if kind == "sqlite":
        yield f"sqlite:///{folder}/bench-{uuid.uuid4().hex[:8]}.db"
        return
    name = f"contentapi_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL at {PG_SERVER} is not reachable: {exc}") from exc
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


# --- processes: pinning, servers, the worker's memory ---------------------------------------


@dataclass(frozen=True)
class Pinning:
    """The command prefixes that put the server on core 0 and wrk on core 1."""

    server: list[str]
    client: list[str]
    note: str

    @classmethod
    def detect(cls) -> Pinning:
        taskset = shutil.which("taskset")
        cores = os.sched_getaffinity(0)
        if taskset is None:
            return cls([], [], "not pinned: no taskset")
        if not {0, 1} <= cores:
            return cls([], [], f"not pinned: cores 0 and 1 are not both available ({cores})")
        return cls([taskset, "-c", "0"], [taskset, "-c", "1"], "server on core 0, wrk on core 1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name, in parentheses, may hold spaces: the fields follow its last ")"
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    """The resident memory of `pid` (VmRSS), in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return math.nan
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


@dataclass
class Server:
    """A server process started by this script, listening on 127.0.0.1:port."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def worker_pid(self) -> int:
        """The process that answers requests: the deepest descendant (uvicorn's worker when it
        forks one, or the Python under a wrapper such as `uv run`), else the process itself."""
        pid = self.process.pid
        while kids := children(pid):
            pid = max(kids, key=rss_mb)
        return pid

    def rss_mb(self) -> float:
        return rss_mb(self.worker_pid())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL; to the process group this script started."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def running(command: Sequence[str], env: dict[str, str], log: Path) -> Iterator[Server]:
    """Start `command` (which must listen on the port it is given) and wait until /healthz
    answers; stop it on the way out, whatever happens."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [part.replace("{port}", str(port)) for part in command],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # Ctrl-C reaches this script, which stops it in order
        )
    server = Server(process, port, log)
    try:
        wait_until_up(server)
        yield server
    finally:
        stop(process)


def wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    # trust_env off: a proxy from the environment must never stand between 127.0.0.1 and us
    with httpx.Client(base_url=server.base, timeout=5, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise BenchError(f"the server stopped at start:\n{server.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the server did not answer within {START_TIMEOUT_S:.0f} s:\n"
                    f"{server.log_tail()}"
                )
            time.sleep(0.2)


def production_environment(database_url: str) -> dict[str, str]:
    """The service's production settings for one instance on 127.0.0.1 (as docker-compose.yml,
    without Redis: one instance keeps its cache in-process), with the rate limit off: this
    measures serving, and one key at full speed would otherwise be refused."""
    return clean_environment() | {
        "CONTENT_API_ENV": "production",
        "CONTENT_API_DATABASE_URL": database_url,
        "CONTENT_API_HOST": HOST,
        "CONTENT_API_CONSOLE_ENABLED": "false",
        "CONTENT_API_DATABASE_TIMEOUT": "5",
        "CONTENT_API_SHUTDOWN_TIMEOUT": "20",
        "CONTENT_API_LOG_FORMAT": "json",
        "CONTENT_API_LOG_LEVEL": "warning",
        "CONTENT_API_RATE_LIMIT": "off",
    }


def service(
    pinning: Pinning, database_url: str, log: Path
) -> contextlib.AbstractContextManager[Server]:
    """`contentapi serve --workers 1` in production, pinned."""
    command = [*pinning.server, str(CONTENTAPI), "serve", "--workers", "1", "--host", HOST]
    return running([*command, "--port", "{port}"], production_environment(database_url), log)


def floor_server(
    pinning: Pinning, body: Path, log: Path
) -> contextlib.AbstractContextManager[Server]:
    """benchmarks/floor.py answering `body`, pinned like the service."""
    command = [*pinning.server, sys.executable, "-m", "benchmarks.floor", "--body", str(body)]
    return running([*command, "--port", "{port}"], clean_environment(), log)


# --- the partner's requests -----------------------------------------------------------------


def document(operation: str) -> str:
    return (OPERATIONS / f"{operation}.graphql").read_text(encoding="utf-8")


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def graphql_codes(response: httpx.Response) -> set[str]:
    """The messages and codes of a GraphQL answer's errors (empty when it is not JSON)."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return set()
    found = set()
    for error in errors:
        found.add(str(error.get("message")))
        found.add(str((error.get("extensions") or {}).get("code")))
    return found


def has_data(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    try:
        payload = response.json()
    except ValueError:
        return False
    return bool(payload.get("data")) and not payload.get("errors")


@dataclass(frozen=True)
class Form:
    """How an operation is sent over GET: as a persisted query (the hash only), or, where the
    server does not understand that yet, with the document in `query=`."""

    operation: str
    persisted: bool
    note: str

    def suffix(self) -> str:
        """The query string after `variables=`."""
        if self.persisted:
            digest = hashlib.sha256(document(self.operation).encode()).hexdigest()
            extensions = compact({"persistedQuery": {"version": 1, "sha256Hash": digest}})
            return "&extensions=" + quote(extensions, safe="")
        return "&query=" + quote(document(self.operation), safe="")

    def prefix(self) -> str:
        return f"/graphql?operationName={self.operation}&variables="

    def path(self, variables: dict[str, Any]) -> str:
        return self.prefix() + quote(compact(variables), safe="") + self.suffix()

    @property
    def label(self) -> str:
        return "persisted GET" if self.persisted else "GET with query="


def discover_form(client: httpx.Client, operation: str, variables: dict[str, Any]) -> Form:
    """Send `operation` as Apollo does (the hash; on PersistedQueryNotFound, the hash and the
    document; then the hash again) and say which form the server answers."""
    digest = hashlib.sha256(document(operation).encode()).hexdigest()
    hashed = {
        "operationName": operation,
        "variables": compact(variables),
        "extensions": compact({"persistedQuery": {"version": 1, "sha256Hash": digest}}),
    }
    first = client.get("/graphql", params=hashed)
    if has_data(first):
        return Form(operation, True, "persisted GET (hash only)")
    if graphql_codes(first) & {"PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND"}:
        registered = client.get("/graphql", params=hashed | {"query": document(operation)})
        if not has_data(registered):
            client.post(
                "/graphql",
                json={
                    "operationName": operation,
                    "variables": variables,
                    "query": document(operation),
                    "extensions": json.loads(hashed["extensions"]),
                },
            )
        if has_data(client.get("/graphql", params=hashed)):
            return Form(operation, True, "persisted GET (hash only), registered first")
    fallback = Form(
        operation,
        False,
        f"GET with query= (a hash-only GET was answered {first.status_code})",
    )
    answer = client.get(fallback.path(variables))
    if not has_data(answer):
        raise BenchError(f"{operation} over GET failed: {answer.status_code} {answer.text[:500]}")
    return fallback


@dataclass(frozen=True)
class Partner:
    """What one partner build sends, learnt from the running server before wrk starts."""

    key: str
    form: Form
    variables: dict[str, Any]
    body: bytes
    snippets: int
    etag: str | None
    revalidates: bool

    def headers(self, port: int, *, etag: str | None = None) -> dict[str, str]:
        headers = {
            "Host": f"{HOST}:{port}",
            "Authorization": f"Bearer {self.key}",
            "Accept": ACCEPT,
        }
        if etag is not None:
            headers["If-None-Match"] = etag
        return headers


def authorised_client(base: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=base,
        timeout=30,
        trust_env=False,
        # identity, as wrk sends: an ETag may differ between encodings of one answer
        headers={"Authorization": f"Bearer {key}", "Accept": ACCEPT, "Accept-Encoding": "identity"},
    )


def learn_partner(server: Server, key: str, catalog: Catalog) -> Partner:
    variables = catalog.product_variables()
    with authorised_client(server.base, key) as client:
        form = discover_form(client, "ProductPage", variables)
        answer = client.get(form.path(variables))
        if not has_data(answer):
            raise BenchError(f"productPage failed: {answer.status_code} {answer.text[:500]}")
        snippets = len(answer.json()["data"]["productPage"]["snippets"])
        etag = answer.headers.get("etag")
        revalidates = False
        if etag is not None:
            again = client.get(form.path(variables), headers={"If-None-Match": etag})
            revalidates = again.status_code == 304
    return Partner(key, form, variables, answer.content, snippets, etag, revalidates)


# --- wrk --------------------------------------------------------------------------------------


def find_wrk() -> str:
    """wrk from PATH or Debian's /usr/bin/wrk; installed with apt-get when missing and allowed."""
    found = shutil.which("wrk") or ("/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else None)
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        print("wrk not found: installing it with apt-get ...", file=sys.stderr)
        for step in ([apt, "update"], [apt, "install", "-y", "wrk"]):
            subprocess.run(step, check=False, timeout=600, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
        if found:
            return found
    raise BenchError(
        "wrk (https://github.com/wg/wrk) is needed: on Debian or Ubuntu `apt-get install wrk`, "
        "on macOS `brew install wrk`"
    )


def lua_literal(value: Any) -> str:
    """`value` (str, int, bool, list, dict) written as a Lua expression."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(item) for item in value) + "}"
    if isinstance(value, dict):
        items = ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


@dataclass
class Plan:
    """What one wrk run sends: the kinds in their repeating order, and their requests."""

    pattern: list[str]
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    uncached: dict[str, Any] | None = None
    max_requests: int = 0

    def script(self, folder: Path) -> Path:
        config = {
            "pattern": self.pattern,
            "fixed": self.fixed,
            "uncached": self.uncached or {},
            "threads": WRK_THREADS,
            "max_requests": self.max_requests,
        }
        path = folder / f"wrk-{uuid.uuid4().hex[:8]}.lua"
        path.write_text(
            f"config = {lua_literal(config)}\n\n" + LUA_SCRIPT.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        return path


class UncachedPages:
    """Hands out ranges of product-page numbers, so that no page is asked for twice."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.next = 1  # page 0 is the cached one

    def spec(self, partner: Partner, port: int) -> dict[str, Any]:
        return {
            "prefix": partner.form.prefix(),
            "suffix": partner.form.suffix(),
            "headers": partner.headers(port),
            "groups": self.catalog.groups,
            "group_format": GROUP_FORMAT,
            "locales": list(LOCALES),
            "categories": self.catalog.categories,
            "topics": self.catalog.topics,
            "concerns": self.catalog.concerns,
            "market": MARKET,
            "offset": self.next,
        }

    def used(self, per_thread: int) -> None:
        self.next += WRK_THREADS * (per_thread + 1)
        if self.next >= self.catalog.distinct_pages:
            raise BenchError("the uncached product pages ran out of distinct variables")


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    socket_errors: int
    graphql_errors: int
    uncached_per_thread: int
    body_bytes: tuple[int, int]  # the smallest and largest 200 answer
    rss_before_mb: float = math.nan
    rss_after_mb: float = math.nan

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def bad_statuses(self) -> dict[str, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if s not in {"200", "304"}}

    @property
    def errors(self) -> int:
        return sum(self.bad_statuses.values()) + self.socket_errors + self.graphql_errors

    def error_detail(self) -> str:
        """What the errors were: statuses, socket errors and timeouts, GraphQL errors."""
        parts = [f"{n} × {status}" for status, n in self.bad_statuses.items()]
        if self.socket_errors:
            parts.append(f"{self.socket_errors} socket errors or timeouts")
        if self.graphql_errors:
            parts.append(f"{self.graphql_errors} × 200 with GraphQL errors")
        return ", ".join(parts)


def run_wrk(
    wrk: str,
    pinning: Pinning,
    server: Server,
    plan: Plan,
    folder: Path,
    *,
    connections: int,
    duration: float,
) -> Measurement:
    """One wrk run of `plan` against `server`; the worker's memory read before and after."""
    script = plan.script(folder)
    command = [
        *pinning.client, wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration:g}s",
        "--timeout", WRK_TIMEOUT, "-s", str(script), f"{server.base}/",
    ]  # fmt: skip
    before = server.rss_mb()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=False,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + 60:.0f} s") from exc
    after = server.rss_mb()
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(line.removeprefix("WRK_RESULT "))
    return Measurement(
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        statuses={str(k): int(v) for k, v in result["statuses"].items()},
        socket_errors=result["socket_errors"],
        graphql_errors=result["graphql_errors"],
        uncached_per_thread=result["uncached_per_thread"],
        body_bytes=(result["body_min"], result["body_max"]),
        rss_before_mb=before,
        rss_after_mb=after,
    )


# --- cleanup on signals -----------------------------------------------------------------------


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` stops and removes what it
    started; SIGINT too when it was ignored at start (as in a shell's background job)."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)


# --- the benchmark ----------------------------------------------------------------------------

SCENARIOS = ("floor", "cached", "304", "uncached")


@dataclass
class Row:
    database: str
    connections: int
    scenario: str
    measurement: Measurement | None
    note: str = ""


@dataclass
class DatabaseRun:
    database: str
    partner: Partner
    rows: list[Row]


def plan_for(scenario: str, partner: Partner, port: int, pages: UncachedPages) -> Plan | None:
    """The wrk plan of one scenario; None when the server cannot be measured in it."""
    path = partner.form.path(partner.variables)
    if scenario in {"floor", "cached"}:
        return Plan(["cached"], {"cached": {"path": path, "headers": partner.headers(port)}})
    if scenario == "304":
        if not partner.revalidates:
            return None
        headers = partner.headers(port, etag=partner.etag)
        return Plan(["revalidate"], {"revalidate": {"path": path, "headers": headers}})
    return Plan(["uncached"], uncached=pages.spec(partner, port))


def measure_database(
    kind: str, args: argparse.Namespace, wrk: str, pinning: Pinning, seed: Path,
    catalog: Catalog, folder: Path,
) -> DatabaseRun:  # fmt: skip
    print(f"\n== {kind}: seeding {args.snippets} snippets ...", flush=True)
    runs: dict[tuple[int, str], list[Measurement]] = {}
    notes: dict[tuple[int, str], str] = {}
    with database(kind, folder) as url:
        key = publish_seed(url, seed)
        with service(pinning, url, folder / f"serve-{kind}.log") as server:
            partner = learn_partner(server, key, catalog)
            print(
                f"productPage: {partner.form.note}; {len(partner.body):,} bytes, "
                f"{partner.snippets} snippets; "
                + (
                    f"ETag {partner.etag}, If-None-Match answered 304"
                    if partner.revalidates
                    else "no revalidation (no ETag or no 304): the 304 runs are skipped"
                ),
                flush=True,
            )
            body = folder / f"body-{kind}.json"
            body.write_bytes(partner.body)
            # both servers up at once (the idle one costs nothing), each scenario measured in
            # turn, round after round: a slow spell of the machine touches one run, not all
            # the runs of one scenario
            with floor_server(pinning, body, folder / f"floor-{kind}.log") as floor:
                pages = UncachedPages(catalog)
                for number in range(1, args.rounds + 1):
                    for connections in args.connections:
                        for scenario in SCENARIOS:
                            target = floor if scenario == "floor" else server
                            plan = plan_for(scenario, partner, target.port, pages)
                            if plan is None:
                                notes[(connections, scenario)] = "no ETag yet"
                                continue
                            result = run_wrk(
                                wrk, pinning, target, plan, folder,
                                connections=connections, duration=args.duration,
                            )  # fmt: skip
                            if scenario == "uncached":
                                pages.used(result.uncached_per_thread)
                            runs.setdefault((connections, scenario), []).append(result)
                            row = Row(kind, connections, scenario, result, f"round {number}")
                            print_row(row, None, flush=True)
    rows = [
        Row(kind, connections, scenario, best_of(runs[(connections, scenario)]))
        if (connections, scenario) in runs
        else Row(kind, connections, scenario, None, notes[(connections, scenario)])
        for connections in args.connections
        for scenario in SCENARIOS
    ]
    return DatabaseRun(kind, partner, rows)


def best_of(rounds: list[Measurement]) -> Measurement:
    """The round with the most requests/s, with the errors of every round and the worker's
    memory before the first round and after the last."""
    best = max(rounds, key=lambda m: m.rate)
    statuses: dict[str, int] = {}
    for m in rounds:
        for status, count in m.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return replace(
        best,
        statuses=statuses,
        socket_errors=sum(m.socket_errors for m in rounds),
        graphql_errors=sum(m.graphql_errors for m in rounds),
        body_bytes=(min(m.body_bytes[0] for m in rounds), max(m.body_bytes[1] for m in rounds)),
        rss_before_mb=rounds[0].rss_before_mb,
        rss_after_mb=rounds[-1].rss_after_mb,
    )


def floor_of(rows: list[Row], row: Row) -> Measurement | None:
    for other in rows:
        if other.scenario == "floor" and other.connections == row.connections:
            return other.measurement
    return None


def ratio(value: float, floor: float) -> str:
    return f"{value / floor:.3f}" if floor else "n/a"


def print_row(row: Row, floor: Measurement | None, *, flush: bool = False) -> None:
    m = row.measurement
    head = f"{row.database:<10} {row.connections:>3} conns  {row.scenario:<8}"
    if m is None:
        print(f"{head}  not measured: {row.note}", flush=flush)
        return
    ratios = ""
    if floor is not None and row.scenario != "floor":
        ratios = (
            f"  ÷ floor: {ratio(m.rate, floor.rate)} req/s, {ratio(m.p50_ms, floor.p50_ms)} p50,"
            f" {ratio(m.p99_ms, floor.p99_ms)} p99"
        )
    detail = f" ({m.error_detail()})" if m.errors else ""
    print(
        f"{head} {m.rate:9.0f} req/s  p50 {m.p50_ms:7.2f} ms  p99 {m.p99_ms:7.2f} ms  "
        f"errors {m.errors}{detail}  RSS {m.rss_before_mb:.0f} → {m.rss_after_mb:.0f} MB  "
        f"bodies {m.body_bytes[0]:,}–{m.body_bytes[1]:,} B{ratios}",
        flush=flush,
    )


SCENARIO_LABELS = {
    "floor": "floor: raw ASGI, same bytes",
    "cached": "productPage, cached",
    "304": "304 revalidation",
    "uncached": "productPage, uncached",
}


def markdown(runs: list[DatabaseRun], args: argparse.Namespace, pinning: Pinning) -> str:
    lines = [
        f"Measured {date.today().isoformat()} on {machine()}; {args.snippets:,} snippets, "
        f"{args.duration:g} s per run, the best of {args.rounds} rounds, {pinning.note}.",
        "",
        "| database | conns | scenario | req/s | p50 | p99 | req/s ÷ floor | p50 ÷ floor "
        "| p99 ÷ floor | errors | worker RSS before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for row in run.rows:
            m, floor = row.measurement, floor_of(run.rows, row)
            label = SCENARIO_LABELS[row.scenario]
            if m is None:
                lines.append(
                    f"| {row.database} | {row.connections} | {label} | "
                    f"not measured: {row.note} | | | | | | | |"
                )
                continue
            ratios = ["", "", ""]
            if floor is not None and row.scenario != "floor":
                ratios = [
                    ratio(m.rate, floor.rate),
                    ratio(m.p50_ms, floor.p50_ms),
                    ratio(m.p99_ms, floor.p99_ms),
                ]
            lines.append(
                f"| {row.database} | {row.connections} | {label} | {m.rate:,.0f} | "
                f"{m.p50_ms:.2f} ms | {m.p99_ms:.2f} ms | {' | '.join(ratios)} | {m.errors} | "
                f"{m.rss_before_mb:.0f} → {m.rss_after_mb:.0f} MB |"
            )
    lines.append("")
    for run in runs:
        for row in run.rows:
            if row.measurement is not None and row.measurement.errors:
                lines.append(
                    f"- {row.database}, {row.connections} connections, {row.scenario}: errors "
                    f"were {row.measurement.error_detail()}."
                )
    for run in runs:
        p = run.partner
        lines.append(
            f"- {run.database}: productPage sent as {p.form.note}; {len(p.body):,} bytes, "
            f"{p.snippets} snippets; " + (f"ETag `{p.etag}`" if p.etag else "no ETag") + "."
        )
    return "\n".join(lines)


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cpu = model or platform.machine()
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def csv_of(kind: type, text: str, choices: Sequence[str] | None = None) -> list[Any]:
    values = [kind(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError("give at least one value")
    if choices is not None and any(value not in choices for value in values):
        raise argparse.ArgumentTypeError(f"choose among {', '.join(choices)}")
    return values


def connection_counts(text: str) -> list[int]:
    try:
        counts = csv_of(int, text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("give numbers, e.g. 16,64") from exc
    if any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError("connections must be 1 or more")
    return counts


def positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def round_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def snippet_count(text: str) -> int:
    value = int(text)
    if value < PAGE_SNIPPETS * len(LOCALES):
        raise argparse.ArgumentTypeError(
            f"at least {PAGE_SNIPPETS * len(LOCALES)}: one product page in each locale"
        )
    return value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snippets", type=snippet_count, default=2000)
    parser.add_argument(
        "--databases",
        type=lambda text: csv_of(str, text, DATABASES),
        default=list(DATABASES),
        help="sqlite, postgresql or both (default: sqlite,postgresql)",
    )
    parser.add_argument("--duration", type=positive, default=5.0, help="seconds per run")
    parser.add_argument(
        "--rounds", type=round_count, default=3, help="runs of each scenario; the best counts"
    )
    parser.add_argument("--connections", type=connection_counts, default=[16, 64])
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    return parser


def main() -> None:
    args = parser().parse_args()
    stop_on_signals()
    try:
        runs = benchmark(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary files and databases removed")
        sys.exit(130)
    failed = sum(row.measurement.errors for run in runs for row in run.rows if row.measurement)
    if failed:
        print(f"\n{failed} requests failed (see the errors column)")
    sys.exit(1 if failed else 0)


def benchmark(args: argparse.Namespace) -> list[DatabaseRun]:
    wrk = find_wrk()
    pinning = Pinning.detect()
    print(f"{machine()}; {pinning.note}; wrk at {wrk}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="contentapi-bench-") as tmp:
        folder = Path(tmp)
        groups = write_seed(folder / "seed", args.snippets)
        catalog = Catalog(groups)
        for kind in args.databases:
            runs.append(
                measure_database(kind, args, wrk, pinning, folder / "seed", catalog, folder)
            )
    print("\nSummary")
    for run in runs:
        for row in run.rows:
            print_row(row, floor_of(run.rows, row))
    if args.markdown:
        print("\n" + markdown(runs, args, pinning))
    return runs


if __name__ == "__main__":
    main()
