"""Generate a large, valid seed folder: the project's catalogs plus N synthetic snippet files."""

from __future__ import annotations

import shutil
from pathlib import Path

PROJECT_SEED = Path(__file__).resolve().parent.parent / "seed"

TOPICS = ["microbiome", "gut-skin-axis", "gut-dysbiosis", "gut-barrier", "probiotics", "prebiotics"]
CONDITIONS = ["acne", "atopic-dermatitis", "psoriasis", "skin-inflammation"]
CITATIONS = ["salem-2018", "oneill-2016", "vaughn-2017", "depessemier-2021", "hill-2014"]

BODY = """Research suggests that the gut microbiome and the skin may influence each other.
Snippet {n} is generated for load tests and says nothing new.

- point one for item {n}
- point two, with **emphasis**

Most evidence comes from reviews of associations; more controlled trials are needed.
"""


def snippet_text(n: int, revision: int = 1) -> str:
    topics = f"[{TOPICS[n % len(TOPICS)]}, {TOPICS[(n + 1) % len(TOPICS)]}]"
    return (
        "---\n"
        f"key: generated-{n:05d}\n"
        "locale: en-US\n"
        f"title: Generated snippet {n} (version {revision})\n"
        f"summary: A generated snippet, number {n}, for measuring the seeding command.\n"
        f"topics: {topics}\n"
        f"conditions: [{CONDITIONS[n % len(CONDITIONS)]}]\n"
        "categories: [supplement]\n"
        f"tags: [generated, batch-{n % 10}]\n"
        "evidence: limited\n"
        f"citations: [{CITATIONS[n % len(CITATIONS)]}, {CITATIONS[(n + 2) % len(CITATIONS)]}]\n"
        "disclaimers: [not-medical-advice]\n"
        "markets: [US, EU, GB]\n"
        "---\n" + BODY.format(n=n)
    )


def generate(root: Path, count: int, *, with_project_entries: bool = False) -> Path:
    """Write a seed folder at `root` with `count` snippet files; return `root`."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(PROJECT_SEED / "catalog", root / "catalog")
    shutil.copytree(PROJECT_SEED / "disclaimers", root / "disclaimers")
    if with_project_entries:
        shutil.copytree(PROJECT_SEED / "snippets", root / "snippets")
        shutil.copytree(PROJECT_SEED / "takeaways", root / "takeaways")
    snippets = root / "snippets"
    snippets.mkdir(exist_ok=True)
    for n in range(count):
        (snippets / f"generated-{n:05d}.en-US.md").write_text(snippet_text(n), encoding="utf-8")
    return root
