"""Releases held in memory answer exactly as SQL does, and a warm release costs no statement.

A history of six releases (translations cleared for fewer markets, a renamed topic, a snippet
for one market, withdrawals of a whole entry and of one locale, a rollback and a re-review) is
read through every partner query, over GraphQL and at the repository, once on SQL only and
once from memory, cold and warm; the answers must be equal, byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

from service.app import create_app
from service.config import Environment, Settings
from service.content import reading
from service.content.memory import HeldLiveRepository, ReleaseHolder, ReleaseMemory
from service.content.models import EntryKind, Release
from service.content.operations import bootstrap_development, in_transaction
from service.content.reading import ProductCriteria, Reader, parse_locale
from service.content.repository import (
    REVISION_FIELDS,
    LiveFilter,
    LiveRepository,
    LocalePreference,
)
from service.content.served import recording
from service.graphql import context as graphql_context
from service.graphql.queries import encode_change_cursor, encode_cursor
from tests.conftest import DATABASES, SEED, fresh_database
from tests.helpers import data, invoke
from tests.test_locale_market_fallback import prepare
from tests.vetting_helpers import make_team

LOCALES = ("en-US", "fr-FR", "fr-CA", "fr", "de-DE")
MARKETS = ("US", "EU", "GB", "FR")
PARTNER_US = "Acme"  # reads the US, in en-US and fr-FR
PARTNER_FR = "Nord"  # reads France and the EU, in fr-FR


@dataclass(frozen=True)
class History:
    settings: Settings
    keys: dict[str, str]  # partner -> key
    latest: int


def _publish(cli: CliRunner, seed: Path, note: str) -> None:
    seeded = invoke(cli, "seed", str(seed), "--approve")
    assert seeded.exit_code == 0, seeded.output
    published = invoke(cli, "publish", "--note", note)
    assert "Published release" in published.output, published.output


def _run(cli: CliRunner, *args: str) -> str:
    result = invoke(cli, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _reword(path: Path, sentence: str) -> None:
    path.write_text(path.read_text() + f"\n{sentence}\n")


def _copy_entry(seed: Path, source: str, target: str, *replacements: tuple[str, str]) -> None:
    text = (seed / source).read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    (seed / target).write_text(text)


def write_history(cli: CliRunner, seed: Path) -> None:
    """Six releases, each changing what some reader is served."""
    prepare(seed)  # French translations cleared for France only, a snippet per market
    _publish(cli, seed, "one")
    _reword(seed / "snippets/probiotics.en-US.md", "A sentence added in release 2.")
    topics = seed / "catalog/topics.yaml"
    topics.write_text(topics.read_text().replace("Gut–skin axis", "The gut–skin axis"))
    us_only = ("markets: [US, EU, GB, FR]", "markets: [US]")
    _copy_entry(
        seed, "snippets/prebiotics.en-US.md", "snippets/fibre.en-US.md",
        ("key: prebiotics", "key: fibre"), us_only,
    )  # fmt: skip
    _copy_entry(
        seed, "snippets/prebiotics.en-US.md", "snippets/prebiotics.fr-CA.md",
        ("locale: en-US", "locale: fr-CA"), ("markets: [US, EU, GB, FR]", "markets: [EU, FR]"),
    )  # fmt: skip
    _publish(cli, seed, "two")
    _run(cli, "withdraw", "secretome", "--reason", "Superseded")  # three
    _run(cli, "withdraw", "probiotics", "--locale", "fr-FR", "--reason", "Wrong")  # four
    _run(cli, "rollback", "probiotics", "--to-revision", "1", "--reason", "Back")  # five
    team = make_team(cli)
    # a re-review is allowed once the review falls due: a year on
    with time_machine.travel(datetime.now(UTC) + timedelta(days=400), tick=True):
        _run(
            cli, "review", "approve", "gut-skin-axis", "--locale", "en-US",
            "--note", "Still holds", "--key", team.reviewer,
        )  # fmt: skip
        _reword(seed / "snippets/gut-barrier.en-US.md", "A sentence added in release 6.")
        _publish(cli, seed, "six")


@pytest.fixture(scope="module", params=DATABASES)
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[History]:
    """A database of each kind holding the six releases, and two partner keys."""
    folder = tmp_path_factory.mktemp("history")
    seed = folder / "seed"
    shutil.copytree(SEED, seed)
    with (
        fresh_database(request, request.param, folder) as url,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("CONTENT_API_DATABASE_URL", url)
        env.setenv("CONTENT_API_ENV", "development")
        env.delenv("CONTENT_API_SEED_PATH", raising=False)
        cli = CliRunner()
        write_history(cli, seed)
        keys = {
            partner: _run(
                cli, "keys", "create", "--partner", partner, "--markets", markets,
                "--locales", locales,
            ).strip().splitlines()[-1]
            for partner, markets, locales in (
                (PARTNER_US, "US", "en-US,fr-FR"), (PARTNER_FR, "FR,EU", "fr-FR"),
            )
        }  # fmt: skip
        yield History(Settings(database_url=url, env=Environment.DEVELOPMENT), keys, 6)


# --- serving on SQL only, or from memory ------------------------------------------------------


def _sql_only(*args: Any, **kwargs: Any) -> Reader:
    return Reader(*args, **(kwargs | {"memory": False}))


class _DecidedLatest:
    """What the delivery layer does when it has read the latest release for a request."""

    def __init__(self, app: ASGIApp, latest: int) -> None:
        self.app = app
        self.latest = latest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["latest_release"] = self.latest
        await self.app(scope, receive, send)


@contextmanager
def serving(
    settings: Settings, *, memory: bool = True, latest: int | None = None
) -> Iterator[TestClient]:
    app: FastAPI = create_app(settings)
    if latest is not None:
        app.add_middleware(_DecidedLatest, latest=latest)
    with pytest.MonkeyPatch.context() as patch:
        if not memory:
            patch.setattr(graphql_context, "Reader", _sql_only)
        with TestClient(app) as client:
            yield client


@dataclass(frozen=True)
class Ask:
    query: str
    variables: dict[str, Any]
    partner: str | None = None


def answer(client: TestClient, ask: Ask, keys: dict[str, str]) -> Any:
    headers = {"authorization": f"Bearer {keys[ask.partner]}"} if ask.partner else {}
    response = client.post(
        "/graphql", json={"query": ask.query, "variables": ask.variables}, headers=headers
    )
    body = response.json()
    for found in body.get("errors", []):
        found.get("extensions", {}).pop("requestId", None)  # differs per request
    return response.status_code, body


def answers(client: TestClient, asks: list[Ask], keys: dict[str, str]) -> list[Any]:
    return [answer(client, ask, keys) for ask in asks]


# --- what partners ask --------------------------------------------------------------------------

ITEM = """id key locale version reviewedAt release { id number note publishedAt }"""
SNIPPET_FIELDS = f"""{ITEM} title summary evidence tags contentHash markets
  body {{ markdown html text }} topics {{ id key name description }} conditions {{ id key name }}
  citations {{ id key title doi pmid url }} disclaimers(market: $m) {{ id key kind text }}"""
TAKEAWAY_FIELDS = f"{ITEM} position text topic {{ id key name }} citations {{ id key }}"
DISCLAIMER_FIELDS = f"{ITEM} kind title text html markets"
EVERYTHING = f"""query ($r: Int, $l: String, $m: String!) {{
  release(id: $r) {{ id number note publishedAt }}
  topics(locale: $l, release: $r) {{ id key name description }}
  conditions(locale: $l, release: $r) {{ id key name }}
  categories(locale: $l, release: $r) {{ id key name }}
  markets(release: $r) {{ id code name defaultLocale locales }}
  snippets(locale: $l, release: $r, first: 100) {{
    totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ {SNIPPET_FIELDS} }} }} }}
  inMarket: snippets(locale: $l, release: $r, first: 100, filter: {{market: $m}}) {{
    totalCount nodes {{ key locale }} }}
  takeaways(locale: $l, release: $r) {{ {TAKEAWAY_FIELDS} }}
  disclaimers(market: $m, locale: $l, release: $r) {{ {DISCLAIMER_FIELDS} }}
  productPage(product: {{category: "supplement", concerns: ["acne"]}}, market: $m, locale: $l,
    release: $r) {{
    release {{ id number }} market locale snippets {{ id key locale version title }}
    takeaways {{ id key text }} disclaimers {{ id key text }}
  }}
}}"""
SNIPPETS = f"""query ($l: String, $r: Int, $f: SnippetFilter, $first: Int, $after: String,
  $m: String!) {{
  snippets(locale: $l, release: $r, filter: $f, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ {SNIPPET_FIELDS} }} }} }}
}}"""
PRODUCT_PAGE = f"""query ($p: ProductInput!, $m: String!, $l: String, $r: Int) {{
  productPage(product: $p, market: $m, locale: $l, release: $r) {{
    release {{ id number }} market locale
    snippets {{ {SNIPPET_FIELDS} }} takeaways {{ {TAKEAWAY_FIELDS} }}
    disclaimers {{ {DISCLAIMER_FIELDS} }}
  }}
}}"""
# what a held release completes at once, and keeps for the next answer (fragments.py): no
# reviewedAt, no disclaimers(market:), which read through loaders
HELD_ITEM = "id key locale version release { id number note publishedAt }"
HELD_PAGE = f"""query ($p: ProductInput!, $m: String!, $l: String, $r: Int, $body: Boolean!) {{
  productPage(product: $p, market: $m, locale: $l, release: $r) {{
    release {{ id number }} market locale
    snippets {{ {HELD_ITEM} title summary evidence tags contentHash markets
      body @include(if: $body) {{ markdown html text }} ...names
      citations {{ id key title doi pmid url }} }}
    takeaways {{ {HELD_ITEM} position text topic {{ id key name }} citations {{ id key }} }}
    disclaimers {{ {HELD_ITEM} kind title text html markets }}
  }}
}}
fragment names on Snippet {{ topics {{ id key name description }} conditions {{ id key name }} }}
"""
ONE = """query ($k: String!, $l: String, $r: Int) {
  snippet(key: $k, locale: $l, release: $r) { id key locale version title markets release { number } }
}"""
TAKEAWAYS = f"""query ($t: String, $l: String, $r: Int) {{
  takeaways(topic: $t, locale: $l, release: $r) {{ {TAKEAWAY_FIELDS} }}
}}"""
CHANGES = f"""query ($s: Int!, $u: Int, $l: String, $m: String, $first: Int, $after: String) {{
  changes(since: $s, until: $u, locale: $l, market: $m, first: $first, after: $after) {{
    totalCount nextSince pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ key kind type locale release {{ number }}
      item {{
        ... on Snippet {{ {ITEM} title topics {{ name }} citations {{ key }} }}
        ... on Takeaway {{ {ITEM} text topic {{ name }} }}
        ... on Disclaimer {{ {ITEM} kind text }}
      }} }} }}
  }}
}}"""
NODE = f"""query ($id: ID!) {{
  node(id: $id) {{
    id
    ... on Snippet {{ {ITEM} title markets }}
    ... on Takeaway {{ {ITEM} text }}
    ... on Disclaimer {{ {ITEM} kind text }}
    ... on Release {{ number note }}
    ... on Topic {{ key name }}
    ... on Citation {{ key title }}
  }}
}}"""

PRODUCTS: list[dict[str, Any]] = [
    {},
    {"category": "supplement"},
    {"category": "skincare", "concerns": ["acne"]},
    {"topics": ["probiotics"], "concerns": ["atopic-dermatitis"]},
    {"category": "supplement", "concerns": ["acne"], "topics": ["gut-barrier", "secretome"]},
    {"category": "unknown"},
]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"topic": "probiotics"},
    {"condition": "acne"},
    {"tag": "definitions"},
    {"evidence": "EMERGING"},
    {"market": "EU"},
    {"market": "FR", "topic": "gut-skin-axis"},
    {"market": "US", "condition": "psoriasis", "tag": "overview"},
    {"topic": "nope"},
]
AFTER = [None, "fibre", "gut", "microbiome-basics", "prebiotics", "zzz"]


def partner_asks(latest: int) -> list[Ask]:
    # every release in one locale or another, and the latest in every locale
    asks = [
        Ask(EVERYTHING, {"r": release, "l": LOCALES[release % 5], "m": MARKETS[release % 4]})
        for release in range(1, latest + 1)
    ]
    asks += [
        Ask(EVERYTHING, {"l": locale, "m": market})
        for locale, market in zip(LOCALES, ("US", "FR", "EU", "FR", "GB"), strict=True)
    ]
    asks += [
        Ask(SNIPPETS, {"l": locale, "r": release, "f": where, "first": 3, "m": "US"})
        for locale, release in (("en-US", None), ("fr-FR", None), ("fr-FR", 2))
        for where in FILTERS
    ]
    asks += [
        Ask(SNIPPETS, {"l": locale, "f": where, "first": first, "after": after, "m": "EU"})
        for locale, where, first in (("en-US", None, 2), ("fr-CA", {"market": "EU"}, 2))
        for after in (None if key is None else encode_cursor(key) for key in AFTER)
    ]
    asks.append(Ask(SNIPPETS, {"first": 0, "m": "US"}))
    asks += [
        Ask(PRODUCT_PAGE, {"p": product, "m": market, "l": locale})
        for product in PRODUCTS
        for market, locale in (("US", "en-US"), ("EU", "fr-FR"), ("FR", "fr-CA"))
    ]
    asks += [
        Ask(HELD_PAGE, {"p": product, "m": market, "l": locale, "r": release, "body": body})
        for product in PRODUCTS
        for market, locale in (("US", "en-US"), ("EU", "fr-FR"), ("FR", "fr-CA"))
        for release in (None, 2)
        for body in (True, False)
    ]
    asks += [
        Ask(PRODUCT_PAGE, {"p": PRODUCTS[4], "m": market, "l": "fr-FR", "r": release})
        for market in ("US", "FR")
        for release in (1, 4)
    ]
    asks += [
        Ask(ONE, {"k": key, "l": locale, "r": release})
        for key in ("probiotics", "secretome", "fibre", "regional-probiotics", "nope")
        for locale, release in (("en-US", None), ("fr-FR", None), ("fr-CA", 2))
    ]
    asks += [
        Ask(TAKEAWAYS, {"t": topic, "l": locale, "r": release})
        for topic in (None, "gut-skin-axis", "secretome", "nope")
        for locale, release in (("en-US", None), ("fr-FR", 1))
    ]
    asks += [
        Ask(CHANGES, {"s": since, "u": until, "l": locale, "m": market, "first": 100})
        for since, until in ((0, None), (1, None), (2, 5), (3, 4), (4, None), (5, 5))
        for locale, market in (("en-US", None), ("fr-FR", "FR"), ("fr-CA", "EU"))
    ]
    asks += [
        Ask(CHANGES, {"s": since, "u": until, "l": "fr-FR", "first": 2, "after": after})
        for since, until in ((0, latest), (1, 5))
        for after in (None, *(encode_change_cursor(since, until, key) for key in AFTER[1:]))
    ]
    return asks


def keyed_asks() -> list[Ask]:
    """Reads with partner keys, the refused ones included."""
    asks = [
        Ask(EVERYTHING, {"r": release, "l": locale, "m": market}, partner)
        for partner, locale, market in (
            (PARTNER_US, "fr-FR", "US"),
            (PARTNER_US, "en-US", "US"),
            (PARTNER_FR, "fr-FR", "FR"),
            (PARTNER_FR, "fr-FR", "EU"),
        )
        for release in (None, 2)
    ]
    for partner, locale, market in (
        (PARTNER_US, "fr-FR", "US"),
        (PARTNER_FR, "fr-FR", "EU"),
        (PARTNER_FR, "en-US", "FR"),  # a locale the key may not ask for
        (PARTNER_US, "en-US", "EU"),  # a market it may not read
    ):
        asks += [
            Ask(PRODUCT_PAGE, {"p": product, "m": market, "l": locale}, partner)
            for product in PRODUCTS[:3]
        ]
        asks += [
            Ask(HELD_PAGE, {"p": product, "m": market, "l": locale, "body": True}, partner)
            for product in PRODUCTS[:3]
        ]
        asks += [Ask(CHANGES, {"s": since, "l": locale, "first": 100}, partner) for since in (0, 3)]
        asks += [
            Ask(ONE, {"k": key, "l": locale}, partner)
            for key in ("probiotics", "regional-probiotics", "fibre")
        ]
    return asks


def node_asks(found: list[Any], partner: str | None = None) -> list[Ask]:
    """A node query for every id the answers hold, and a few ids of versions not served."""
    ids: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("id"), str):
                ids.add(value["id"])
            for inner in value.values():
                collect(inner)
        elif isinstance(value, list | tuple):
            for inner in value:
                collect(inner)

    collect(found)
    # the same revisions, asked for as of other releases
    for node_id in list(ids):
        type_name, _, rest = base64.b64decode(node_id).decode().partition(":")
        if type_name == "Snippet":
            _, revision, locale = rest.split(":")
            for other in ("1", "3", "6"):
                text = f"{type_name}:{other}:{revision}:{locale}"
                ids.add(base64.b64encode(text.encode()).decode())
    # a third of them, spread over every type and release: enough to tell, and quick
    return [Ask(NODE, {"id": node_id}, partner) for node_id in sorted(ids)[::3]]


def test_every_partner_query_answers_from_memory_as_on_sql(history: History) -> None:
    asks = partner_asks(history.latest) + keyed_asks()
    with serving(history.settings, memory=False) as client:
        expected = answers(client, asks, history.keys)
        nodes = node_asks(expected) + node_asks(expected[-40:], PARTNER_FR)
        expected_nodes = answers(client, nodes, history.keys)
    assert len(nodes) > 100
    assert any(status != 200 or "errors" in body for status, body in expected)  # refusals too
    with serving(history.settings) as client:
        cold = answers(client, asks, history.keys)
        warm = answers(client, asks, history.keys)
        cold_nodes = answers(client, nodes, history.keys)
        fragments = client.app.state.fragments  # type: ignore[attr-defined]
    # the warm answers took the items completed for the cold ones
    assert fragments.hits > 1000
    for found in (cold, warm):
        mismatched = [ask for ask, a, b in zip(asks, found, expected, strict=True) if a != b]
        assert mismatched == [], mismatched[:3]
    assert cold_nodes == expected_nodes
    # and with the latest release decided before the GraphQL layer
    with serving(history.settings, latest=history.latest) as client:
        assert answers(client, asks[:40], history.keys) == expected[:40]


# --- the repository: every read, every filter, every release -------------------------------------


def _filters(times: dict[int, datetime]) -> list[LiveFilter]:
    first, last = times[1], times[max(times)]
    return [
        LiveFilter(),
        LiveFilter(market="US"),
        LiveFilter(market="EU"),
        LiveFilter(market="FR"),
        LiveFilter(any_markets=("FR", "GB")),
        LiveFilter(any_markets=()),
        LiveFilter(topics=("probiotics", "gut-skin-axis")),
        LiveFilter(conditions=("acne",), market="EU"),
        LiveFilter(tag="overview"),
        LiveFilter(evidence="limited", market="FR"),
        LiveFilter(keys=("probiotics", "secretome", "fibre", "not-medical-advice", "nope")),
        LiveFilter(market="US", category="supplement", any_topics=("probiotics",)),
        LiveFilter(market="EU", category="skincare", any_conditions=("acne", "psoriasis")),
        LiveFilter(any_citations=("salem-2018",), any_topics=("secretome",), any_conditions=()),
        LiveFilter(approved_between=(first, last)),
        LiveFilter(approved_between=(first - timedelta(days=1), first), market="FR"),
        # a window past a release's time: answered by SQL, the same all the same
        LiveFilter(approved_between=(first, last + timedelta(days=1))),
    ]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _release_times(session: AsyncSession) -> dict[int, datetime]:
    rows = await session.execute(select(Release.id, Release.created_at))
    return {release_id: _utc(at) for release_id, at in rows}


class _Compared:
    """Asks a held and a SQL repository the same and checks the answers are equal."""

    def __init__(self, sql: LiveRepository, held: HeldLiveRepository) -> None:
        self.sql, self.held, self.count = sql, held, 0

    async def same(self, method: str, *args: Any, **kwargs: Any) -> Any:
        expected = await getattr(self.sql, method)(*args, **kwargs)
        found = await getattr(self.held, method)(*args, **kwargs)
        assert found == expected, (method, args, kwargs)
        self.count += 1
        return expected


async def _same_entries(
    compare: _Compared, release_id: int, locales: LocalePreference, filters: list[LiveFilter]
) -> None:
    for where in filters:
        for kind in EntryKind:
            found = await compare.same("live_entries", release_id, locales, kind.value, where)
            count = await compare.held.count_live_entries(release_id, locales, kind.value, where)
            assert count == len(found)
            for after_key, limit in (("gut", 2), ("prebiotics", None)):
                await compare.same(
                    "live_entries", release_id, locales, kind.value, where,
                    after_key=after_key, limit=limit,
                )  # fmt: skip
        await compare.same("served_entries", release_id, locales, where)


async def _same_history(compare: _Compared, release_id: int, locales: LocalePreference) -> None:
    """What changed since an earlier release, and what a node id names as of this one."""
    latest = 6
    for since in range(release_id):
        for until in {release_id, latest}:
            window = (since, until)
            await compare.same("served_entries", release_id, locales, touched=window)
            await compare.same("last_touched", since, until, locales)
    served = await compare.sql.served_entries(latest, locales)
    revision_ids = {item.entry.revision_id for item in served} | {1, 2, 3, 999}
    for revision_id in sorted(revision_ids):
        for kind in EntryKind:
            await compare.same("live_revision", release_id, revision_id, kind.value)


async def _same_revisions(compare: _Compared, ids: list[int], times: dict[int, datetime]) -> None:
    revisions = await compare.sql.revisions(ids)
    found = await compare.held.revisions(ids)
    assert list(found) == list(revisions)
    for revision_id, revision in revisions.items():
        assert {name: getattr(found[revision_id], name) for name in REVISION_FIELDS} == {
            name: getattr(revision, name) for name in REVISION_FIELDS
        }
    for name in ("topics", "conditions", "categories", "disclaimers", "tags", "citations"):
        await compare.same(f"attached_{name}", ids)
    await compare.same("attached_markets", ids)
    for until in sorted(times.values()):
        for moment in (until, until - timedelta(microseconds=1)):
            await compare.same("approved_at", ids, until=moment)


async def _same_reads(session: AsyncSession) -> int:
    """Every read of a held repository against the SQL one; the number of reads compared.
    Releases are loaded whole (1), on the one before (2), on one two before (4, 6) and on
    one held out of order (3 on 2, 5 on 4)."""
    times = await _release_times(session)
    holder = ReleaseHolder(keep=4)
    locales = [parse_locale(tag, "en-US") for tag in LOCALES]
    compared = 0
    for markets, filters in ((None, _filters(times)), (("FR", "EU"), _filters(times)[::4])):
        compare = _Compared(
            LiveRepository(session, markets=markets),
            HeldLiveRepository(session, holder=holder, markets=markets),
        )
        for release_id in (1, 2, 4, 6, 3, 5):
            for preference in locales:
                wide = preference.requested in ("en-US", "fr-FR", "fr-CA")
                await _same_entries(compare, release_id, preference, filters if wide else [])
            for preference in locales[:2]:
                await _same_history(compare, release_id, preference)
        shown = await compare.held.served_entries(6, locales[1])
        ids = sorted({item.entry.revision_id for item in shown} | set(compare.held._revisions))
        await _same_revisions(compare, ids, times)
        compared += compare.count
    return compared


def test_every_read_of_a_held_release_equals_sql(history: History) -> None:
    compared = asyncio.run(in_transaction(history.settings, _same_reads))
    assert compared > 1000


def _snapshot(memory: ReleaseMemory) -> Any:
    """All a held release holds, as plain values."""
    return (
        memory.release_id,
        memory.published_at,
        [
            (entry.entry_id, entry.key, entry.kind, [(s.served, s.revision) for s in entry.shown])
            for entry in memory.entries
        ],
        memory.approvals,
        list(zip(memory.log_releases, memory.log_entries, memory.log_locales, strict=True)),
    )


def test_a_release_built_on_an_earlier_one_holds_what_a_whole_load_holds(
    history: History,
) -> None:
    async def compare(session: AsyncSession) -> int:
        whole = {}
        for release_id in range(1, history.latest + 1):
            memory = await HeldLiveRepository(session, holder=ReleaseHolder()).held(release_id)
            assert memory is not None
            whole[release_id] = _snapshot(memory)
        pairs = 0
        for base in range(1, history.latest):
            for release_id in range(base + 1, history.latest + 1):
                holder = ReleaseHolder()
                held = HeldLiveRepository(session, holder=holder)
                await held.held(base)
                built = await held.held(release_id)
                assert built is not None
                assert _snapshot(built) == whole[release_id], (base, release_id)
                pairs += 1
        return pairs

    assert asyncio.run(in_transaction(history.settings, compare)) == 15


# --- statements -----------------------------------------------------------------------------------

PAGE = """{ productPage(product: {category: "supplement", concerns: ["acne"]}, market: "US") {
  release { id number }
  snippets { id key locale version title summary evidence tags contentHash markets reviewedAt
    body { html text } topics { id key name } conditions { id key name }
    citations { id key doi url } disclaimers(market: "US") { id key kind text } release { id } }
  takeaways { id key position text topic { id key name } citations { id } release { id } }
  disclaimers { id key kind text html markets release { id number } }
} }"""
SNIPPETS_PAGE = """{ snippets(first: 50, filter: {market: "US"}, locale: "fr-FR") {
  totalCount edges { cursor node { id key locale version title reviewedAt markets
    topics { name } disclaimers(market: "US") { key text } release { number } } } } }"""


@contextmanager
def counting(client: TestClient) -> Iterator[list[str]]:
    statements: list[str] = []

    def counted(*args: Any) -> None:
        if "revoked_at" not in args[2]:  # the freshness poll runs on its own clock
            statements.append(args[2])

    engine = client.app.state.engine.sync_engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", counted)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", counted)


def test_a_warm_release_is_read_without_any_sql_statement(history: History) -> None:
    with serving(history.settings, latest=history.latest) as client:
        with counting(client) as cold:
            first = {query: data(client, query) for query in (PAGE, SNIPPETS_PAGE)}
        with counting(client) as warm:
            again = {query: data(client, query) for query in (PAGE, SNIPPETS_PAGE)}
    assert again == first
    assert first[PAGE]["productPage"]["snippets"]
    assert first[SNIPPETS_PAGE]["snippets"]["totalCount"] > 5
    assert cold  # the first read loads the release
    assert warm == []
    # the delivery layer decides the latest release for every request (from its poll), so a
    # plain request of the application is read without any statement too
    with serving(history.settings) as client:
        data(client, PAGE)
        with counting(client) as asked:
            assert data(client, PAGE) == first[PAGE]
    assert asked == []


def test_concurrent_first_reads_of_a_release_share_one_load(history: History) -> None:
    loads: list[int] = []
    original = HeldLiveRepository.release_content

    async def counted(self: HeldLiveRepository, release_id: int, **kwargs: Any) -> Any:
        loads.append(release_id)
        await asyncio.sleep(0.05)  # let the other readers arrive while this one loads
        return await original(self, release_id, **kwargs)

    releases = reading.ReleaseCache()

    async def read(session: AsyncSession) -> list[str]:
        reader = Reader(session, default_locale="en-US", releases=releases)
        view = await reader.require_release(3)
        return [entry.key for entry in await reader.takeaways(view, reader.locales(None), None)]

    async def readers() -> list[list[str]]:
        return list(await asyncio.gather(*(in_transaction(history.settings, read) for _ in "abc")))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HeldLiveRepository, "release_content", counted)
        found = asyncio.run(readers())
    assert loads == [3]
    assert found[0] == found[1] == found[2] != []


# --- publishing and previews ----------------------------------------------------------------------

LATEST = '{ release { number } snippet(key: "probiotics") { version release { number } } }'


def test_a_query_after_a_publish_reads_the_new_release(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    settings = settings.model_copy(update={"seed_path": seed_copy})
    asyncio.run(bootstrap_development(settings))
    with serving(settings) as client:
        before = data(client, LATEST)
        _reword(seed_copy / "snippets/probiotics.en-US.md", "A sentence added in release 2.")
        _publish(cli, seed_copy, "two")
        after = data(client, LATEST)
        pinned = data(client, ONE, {"k": "probiotics", "r": 1})
    assert before == {"release": {"number": 1}, "snippet": {"version": 1, "release": {"number": 1}}}
    assert after == {"release": {"number": 2}, "snippet": {"version": 2, "release": {"number": 2}}}
    assert pinned["snippet"]["version"] == 1


def test_a_preview_never_enters_the_shared_memory(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    settings = settings.model_copy(update={"seed_path": seed_copy})
    asyncio.run(bootstrap_development(settings))
    team = make_team(cli)
    probiotics = seed_copy / "snippets/probiotics.en-US.md"
    _reword(probiotics, "A sentence the preview shows.")
    assert invoke(cli, "seed", str(seed_copy), "--approve").exit_code == 0
    preview = {"content-preview": "next-release", "authorization": f"Bearer {team.reviewer}"}
    with serving(settings) as client:
        data(client, LATEST)  # release 1, held
        staged = client.post("/graphql", json={"query": LATEST}, headers=preview).json()["data"]
        memory = client.app.state.releases.memory  # type: ignore[attr-defined]
        held_after_preview = memory.held()
        partner = data(client, LATEST)
        # the release published for real differs from the one the preview staged
        _reword(probiotics, "A sentence added after the preview.")
        _publish(cli, seed_copy, "two")
        published = data(client, LATEST)
    assert staged == {"release": {"number": 2}, "snippet": {"version": 2, "release": {"number": 2}}}
    assert held_after_preview == [1]
    assert partner == {
        "release": {"number": 1},
        "snippet": {"version": 1, "release": {"number": 1}},
    }
    assert published == {
        "release": {"number": 2},
        "snippet": {"version": 3, "release": {"number": 2}},
    }


def test_held_revisions_are_shared_between_releases(history: History) -> None:
    """Release 6 built on release 5 shows most of the same revisions: held once."""

    async def load(session: AsyncSession) -> tuple[Any, Any]:
        holder = ReleaseHolder()
        held = HeldLiveRepository(session, holder=holder)
        five, six = await held.held(5), await held.held(6)
        return five, six

    five, six = asyncio.run(in_transaction(history.settings, load))
    shared = [
        revision_id
        for revision_id, shown in six.by_revision.items()
        if revision_id in five.by_revision
    ]
    assert len(shared) > 10
    assert all(six.by_revision[rid].revision is five.by_revision[rid].revision for rid in shared)


def test_the_entries_an_answer_shows_are_noted_for_its_cache_tags(history: History) -> None:
    async def read(session: AsyncSession) -> tuple[set[str], list[str]]:
        reader = Reader(session, default_locale="en-US", releases=reading.ReleaseCache())
        view = await reader.require_release(None)
        with recording() as noted:
            page = await reader.product_page(
                view, reader.locales("fr-FR"), "FR", ProductCriteria(category="skincare")
            )
        shown = page.snippets + page.takeaways + page.disclaimers
        return noted, [entry.key for entry in shown]

    noted, shown = asyncio.run(in_transaction(history.settings, read))
    assert noted == set(shown)
    assert "cosmetic-claims-eu-uk" in noted  # a disclaimer the page requires


def test_kept_items_stay_within_their_bound_and_answer_as_without_them(history: History) -> None:
    asks = [
        Ask(HELD_PAGE, {"p": product, "m": market, "l": locale, "body": True})
        for product in PRODUCTS
        for market, locale in (("US", "en-US"), ("EU", "fr-FR"), ("FR", "fr-CA"))
    ]
    unkept = history.settings.model_copy(update={"fragment_cache_bytes": 0})
    with serving(unkept) as client:
        assert client.app.state.fragments is None  # type: ignore[attr-defined]
        expected = answers(client, asks, history.keys)
    with serving(history.settings) as client:
        answers(client, asks, history.keys)
        unbounded = client.app.state.fragments.bytes  # type: ignore[attr-defined]
    bound = unbounded // 3
    bounded = history.settings.model_copy(update={"fragment_cache_bytes": bound})
    with serving(bounded) as client:
        fragments = client.app.state.fragments  # type: ignore[attr-defined]
        # each page twice in a row: the second takes what the first kept
        twice = [
            (answer(client, ask, history.keys), answer(client, ask, history.keys)) for ask in asks
        ]
    assert [first for first, _ in twice] == expected
    assert [second for _, second in twice] == expected
    assert 0 < fragments.bytes <= bound
    assert fragments.hits > 0
