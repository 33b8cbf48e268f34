"""Headless Chromium for the map tests, with the network blocked and every request recorded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class OpenedMap:
    page: Any
    url: str
    requests: list[str] = field(default_factory=list)  # every request the page made
    blocked: list[str] = field(default_factory=list)  # requests the router refused
    errors: list[str] = field(default_factory=list)  # uncaught page errors, console errors

    @property
    def foreign_requests(self) -> list[str]:
        return [r for r in self.requests if r != self.url and not r.startswith("data:")]


@contextmanager
def open_map(browser: Any, path: Path, *, timeout_ms: float = 30_000) -> Iterator[OpenedMap]:
    """Open ``path`` with every request but the page itself refused; wait until the map is ready."""
    url = path.resolve().as_uri()
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = OpenedMap(page=None, url=url)

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            opened.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    opened.page = page
    page.on("request", lambda req: opened.requests.append(req.url))
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: opened.errors.append(msg.text) if msg.type == "error" else None,
    )
    try:
        page.goto(url, wait_until="load", timeout=timeout_ms)
        try:
            page.wait_for_function(
                "window.chiploc && window.chiploc.readyMs !== null", timeout=timeout_ms
            )
        except Exception as e:
            raise AssertionError(f"map never became ready: {opened.errors}") from e
        yield opened
    finally:
        context.close()
