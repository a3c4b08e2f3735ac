"""Markdown to sanitised HTML and to plain text, done once when a revision is created."""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "strong", "em", "s", "code", "pre", "blockquote", "ul", "ol", "li",
        "a", "h2", "h3", "h4", "hr", "table", "thead", "tbody", "tr", "th", "td", "sup", "sub",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = frozenset({"https", "http", "mailto"})


@dataclass(frozen=True)
class RenderedBody:
    markdown: str
    html: str
    text: str


@cache
def _parser() -> MarkdownIt:
    # html=False: raw HTML in a seed file is shown as text, never passed through
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


@cache
def _html_detector() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True})


def raw_html_lines(markdown: str) -> list[tuple[int, str]]:
    """(line within the text, the markup) of each piece of raw HTML in a Markdown text."""
    found: list[tuple[int, str]] = []
    if "<" not in markdown:
        return found  # no markup possible; most bodies, and a full parse saved
    for token in _html_detector().parse(markdown):
        line = (token.map[0] if token.map else 0) + 1
        if token.type == "html_block":
            found.append((line, token.content.strip().splitlines()[0]))
        elif token.type == "inline":
            offset = 0
            for child in token.children or []:
                if child.type == "html_inline":
                    found.append((line + offset, child.content))
                elif child.type in {"softbreak", "hardbreak"}:
                    offset += 1
    return found


def sanitise(html: str) -> str:
    """The allow-list is the last word on what markup may reach a partner's page."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in {"text", "code_inline"}:
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)


def plain_text(tokens: list[Token]) -> str:
    """Readable text for meta descriptions and previews: no markup, no tags, not even escaped."""
    lines: list[str] = []
    markers: list[str] = []  # per open list: "-" or the last number used
    for token in tokens:
        if token.type in {"bullet_list_open", "ordered_list_open"}:
            if not markers and lines:
                lines.append("")
            start = int(token.attrGet("start") or 1) - 1
            markers.append("-" if token.type == "bullet_list_open" else str(start))
        elif token.type in {"bullet_list_close", "ordered_list_close"}:
            markers.pop()
        elif token.type == "list_item_open" and markers[-1] != "-":
            markers[-1] = str(int(markers[-1]) + 1)
        elif token.type in {"inline", "fence", "code_block"}:
            text = (_inline_text(token) if token.type == "inline" else token.content).strip()
            if not text:
                continue
            if markers:
                marker = "-" if markers[-1] == "-" else f"{markers[-1]}."
                lines.append("  " * (len(markers) - 1) + f"{marker} {text}")
            else:
                if lines:
                    lines.append("")
                lines.append(text)
    # markdown-it has decoded entities; a tag spelt out in the source must not survive as text
    return html.unescape(nh3.clean("\n".join(lines), tags=set()))


def render(markdown: str) -> RenderedBody:
    tokens = _parser().parse(markdown)
    rendered = sanitise(_parser().renderer.render(tokens, _parser().options, {}))
    return RenderedBody(markdown=markdown, html=rendered.strip(), text=plain_text(tokens))
