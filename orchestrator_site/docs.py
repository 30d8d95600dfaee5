"""The project's guides (docs/*.md) as pages of the app, so every link points inside it.

The Markdown is ours, but it goes through the same sanitiser as model output anyway; links
between guides (`engine.md`, `docs/engine.md#retries`) become links to their pages.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from playground.templatetags.playground_tags import markdown_html

_SLUG = re.compile(r"^[a-z0-9-]+$")
_MD_LINK = re.compile(r'href="(?:\./|docs/)?([a-z0-9-]+)\.md(#[^"]*)?"')


@dataclass(frozen=True)
class Guide:
    slug: str
    title: str


def _docs_dir() -> Path:
    return Path(settings.BASE_DIR) / "docs"


def guides_list() -> list[Guide]:
    """Every guide with its first heading as title, by slug."""
    guides = []
    for path in sorted(_docs_dir().glob("*.md")):
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        guides.append(Guide(slug=path.stem, title=first.lstrip("# ").strip() or path.stem))
    return guides


@lru_cache(maxsize=32)
def _rendered(path: Path, mtime: float) -> str:
    html = markdown_html(path.read_text(encoding="utf-8"))

    def link(match: re.Match[str]) -> str:
        return f'href="{reverse("guide", args=[match.group(1)])}{match.group(2) or ""}"'

    return _MD_LINK.sub(link, html)


def guide_html(*, slug: str) -> str | None:
    """The guide's sanitised HTML, or None when there is no such guide."""
    if not _SLUG.match(slug):
        return None
    path = _docs_dir() / f"{slug}.md"
    if not path.is_file():
        return None
    return _rendered(path, path.stat().st_mtime)


def guides(request: HttpRequest) -> HttpResponse:
    return render(request, "docs/index.html", {"guides": guides_list()})


def guide(request: HttpRequest, slug: str) -> HttpResponse:
    html = guide_html(slug=slug)
    if html is None:
        raise Http404("No such guide.")
    return render(request, "docs/guide.html", {"html": html, "slug": slug, "guides": guides_list()})
