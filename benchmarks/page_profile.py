"""Where an uncached product page's time goes, in process: the production application called
as an ASGI callable (every layer, without a server or a socket), a new product page each
request.

    uv run python -m benchmarks.page_profile [--snippets 2000] [--pages 400] [--rounds 10]
                                             [--profile FILE]

It generates, seeds and publishes the snippets of scripts/bench into a temporary SQLite
database with the real commands, creates a partner key, builds the application with the
production settings scripts/bench serves with, and asks product pages as persisted GETs with
the variables of scripts/bench's uncached scenario (benchmarks/partner.lua): each one a new
cache key. The first round meets every snippet for the first time; the best round is the
steady state. It prints the milliseconds a page takes in each round and the best of them;
`--profile FILE` writes a cProfile of the last round (`python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchmarks.bench import (
    ACCEPT,
    LOCALES,
    MARKET,
    OPERATIONS,
    PAGE_SNIPPETS,
    Catalog,
    group_topic,
    production_environment,
    publish_seed,
    write_seed,
)

Message = dict[str, Any]


def page_variables(catalog: Catalog, index: int) -> dict[str, Any]:
    """Product page `index` of the uncached scenario, as benchmarks/partner.lua makes it."""
    group, rest = index % catalog.groups, index // catalog.groups
    locale, rest = LOCALES[rest % len(LOCALES)], rest // len(LOCALES)
    categories = catalog.categories
    category, rest = categories[rest % len(categories)], rest // len(categories)
    masks = 1 << len(catalog.topics)
    topics = [t for bit, t in enumerate(catalog.topics) if (rest % masks) >> bit & 1]
    rest //= masks
    concerns = [c for bit, c in enumerate(catalog.concerns) if rest >> bit & 1]
    product: dict[str, Any] = {"concerns": concerns, "topics": [group_topic(group), *topics]}
    if category:
        product = {"category": category, **product}
    return {"product": product, "market": MARKET, "locale": locale}


class Pages:
    """Persisted GETs of ProductPage, sent to the application in process."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.document = (OPERATIONS / "ProductPage.graphql").read_text(encoding="utf-8")
        digest = hashlib.sha256(self.document.encode()).hexdigest()
        self.extensions = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}})
        self.headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"accept", ACCEPT.encode()),
        ]

    def query_string(self, variables: dict[str, Any], *, with_document: bool = False) -> bytes:
        params = {
            "operationName": "ProductPage",
            "variables": json.dumps(variables, separators=(",", ":")),
            "extensions": self.extensions,
        }
        if with_document:
            params["query"] = self.document
        return urlencode(params).encode()

    async def ask(self, query_string: bytes) -> bytes:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": query_string,
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status = 0
        body = bytearray()

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                body.extend(message.get("body", b""))

        await self.app(scope, receive, send)
        if status != 200 or b'"errors"' in body:
            raise SystemExit(f"a product page failed ({status}): {bytes(body[:300])!r}")
        return bytes(body)


async def measure(args: argparse.Namespace, database_url: str, key: str, catalog: Catalog) -> None:
    os.environ.update(production_environment(database_url))
    from service.app import app_from_environment

    app = app_from_environment()
    async with app.router.lifespan_context(app):
        pages = Pages(app, key)
        # registers the document
        await pages.ask(pages.query_string(page_variables(catalog, 0), with_document=True))
        index = 1
        rounds: list[float] = []
        for number in range(args.rounds):
            # the round's requests, made before it is timed
            asked = [
                pages.query_string(page_variables(catalog, index + n)) for n in range(args.pages)
            ]
            index += args.pages
            profile = cProfile.Profile() if args.profile and number == args.rounds - 1 else None
            started = time.perf_counter()
            if profile is not None:
                profile.enable()
            for query_string in asked:
                await pages.ask(query_string)
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
            rounds.append((time.perf_counter() - started) / args.pages * 1000)
            note = " (profiled)" if profile is not None else ""
            print(f"round {number + 1}: {rounds[-1]:.3f} ms a page{note}", flush=True)
        steady = [ms for n, ms in enumerate(rounds) if not (args.profile and n == len(rounds) - 1)]
        print(f"best round: {min(steady):.3f} ms a page ({args.pages} pages a round)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snippets", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=400, help="product pages a round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the last round here")
    args = parser.parse_args()
    if args.snippets < 2 * PAGE_SNIPPETS or args.pages < 1 or args.rounds < 1:
        parser.error("--snippets must be at least 20, --pages and --rounds at least 1")
    with tempfile.TemporaryDirectory(prefix="contentapi-page-profile-") as folder:
        root = Path(folder)
        seed = root / "seed"
        seed.mkdir()
        groups = write_seed(seed, args.snippets)
        database_url = f"sqlite+aiosqlite:///{root / 'content.db'}"
        key = publish_seed(database_url, seed)
        print(f"{args.snippets} snippets published; {args.rounds} rounds of {args.pages} pages")
        asyncio.run(measure(args, database_url, key, Catalog(groups)))


if __name__ == "__main__":
    sys.exit(main())
