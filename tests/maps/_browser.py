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


# --- What a person sees at a marker's pixel ----------------------------------------------

# The markers of one named layer (a marker cluster group's visible parents when clustered),
# each with its pixel in the page once the map is centred on it at the current zoom, and
# the distance to the nearest other marker (overlapping markers hide one another).
_MARKERS_JS = """(name) => {
  const map = window.chiploc.map, group = window.chiploc.layers[name];
  const leaves = [];
  const walk = (x) => {
    if (x.getLayers && !(x instanceof L.GeoJSON)) { x.getLayers().forEach(walk); }
    else { leaves.push(x); }
  };
  walk(group);
  const seen = new Set(), out = [];
  leaves.forEach((l) => {
    const v = group.getVisibleParent ? group.getVisibleParent(l) : l;
    if (!v || seen.has(v)) { return; }
    seen.add(v);
    out.push(v);
  });
  window.chiplocProbe = out;
  const pts = out.map((v) => map.latLngToContainerPoint(v.getLatLng()));
  const others = [];  // every marker of every named layer, this one's included
  Object.values(window.chiploc.layers).forEach((g) => {
    const all = [];
    const w = (x) => {
      if (x.getLayers && !(x instanceof L.GeoJSON)) { x.getLayers().forEach(w); }
      else if (x.getLatLng) { all.push(x); }
    };
    if (g && g.getLayers && !(g instanceof L.GeoJSON)) { w(g); }
    const vis = new Set(all.map((l) => g.getVisibleParent ? g.getVisibleParent(l) : l));
    vis.forEach((v) => { if (v) { others.push([v, map.latLngToContainerPoint(v.getLatLng())]); } });
  });
  return pts.map((p, i) => {
    let near = Infinity;
    others.forEach(([v, q]) => { if (v !== out[i]) { near = Math.min(near, p.distanceTo(q)); } });
    const row = out[i].options.chiplocRow;
    return {index: i, cluster: !!out[i].getChildCount, isolation_px: near,
            row: row === undefined ? null : row};
  });
}"""

# Centre the map on probe marker ``i`` (same zoom) and report what is topmost at its pixel:
# with every map pane made hit-testable (display-only layers are ``pointer-events: none``,
# which elementFromPoint would look through), the element a person sees; without, the one a
# click reaches.
_TOPMOST_JS = """(i) => {
  const map = window.chiploc.map, v = window.chiplocProbe[i];
  map.closePopup();  // a popup left open by an earlier click would cover the marker
  map.setView(v.getLatLng(), map.getZoom(), {animate: false});
  const p = map.latLngToContainerPoint(v.getLatLng());
  const r = map.getContainer().getBoundingClientRect();
  const x = r.left + p.x, y = r.top + p.y;
  const own = v._icon || v._path || (v._renderer && v._renderer._container);
  const style = document.createElement('style');
  style.textContent = '.leaflet-pane, .leaflet-pane * { pointer-events: auto !important; }';
  document.head.appendChild(style);
  const seen = document.elementFromPoint(x, y);
  style.remove();
  const clicked = document.elementFromPoint(x, y);
  const describe = (e) => e ? (e.tagName + '.' + (e.getAttribute('class') || '')) : 'nothing';
  return {x: x, y: y, seen_is_marker: !!own && (seen === own || own.contains(seen)),
          clicked_is_marker: !!own && (clicked === own || own.contains(clicked)),
          seen: describe(seen), clicked: describe(clicked)};
}"""


@dataclass(frozen=True)
class MarkerProbe:
    index: int
    cluster: bool
    row: int | None  # the fleet row of a plain (unclustered) fleet marker
    x: float
    y: float
    seen_is_marker: bool
    clicked_is_marker: bool
    seen: str
    clicked: str
    rgb: tuple[int, int, int]


def _png_pixel(png: bytes) -> tuple[int, int, int]:
    """The RGB of a 1x1 PNG (any filter type leaves a lone pixel's bytes as they are)."""
    import struct
    import zlib

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, colour_type = 8, b"", None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", data[:10])
            assert (width, height, depth) == (1, 1, 8), (width, height, depth)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert colour_type in (2, 6), colour_type
    return raw[1], raw[2], raw[3]


def probe_markers(
    page: Any,
    layer: str,
    *,
    zoom: int | None = None,
    min_isolation_px: float = 24.0,
    limit: int = 12,
) -> list[MarkerProbe]:
    """Up to ``limit`` markers of ``layer`` at least ``min_isolation_px`` from every other marker
    (at ``zoom``, else the current zoom), centred in turn: what is topmost at its pixel, what a
    click there reaches, and the colour shown there. The map is left centred on the last one;
    :func:`centre_on` centres it on another."""
    if zoom is not None and page.evaluate("window.chiploc.map.getZoom()") != zoom:
        page.evaluate(f"void window.chiploc.map.setZoom({int(zoom)}, {{animate: false}})")
        page.wait_for_timeout(800)  # marker clusters re-form after a zoom, in timers of their own
    found = page.evaluate(_MARKERS_JS, layer)
    out = []
    for m in [m for m in found if m["isolation_px"] >= min_isolation_px][:limit]:
        hit = page.evaluate(_TOPMOST_JS, m["index"])
        clip = {"x": int(hit["x"]), "y": int(hit["y"]), "width": 1, "height": 1}
        shot = page.screenshot(clip=clip)
        out.append(
            MarkerProbe(
                index=m["index"],
                cluster=m["cluster"],
                row=m["row"],
                x=hit["x"],
                y=hit["y"],
                seen_is_marker=hit["seen_is_marker"],
                clicked_is_marker=hit["clicked_is_marker"],
                seen=hit["seen"],
                clicked=hit["clicked"],
                rgb=_png_pixel(shot),
            )
        )
    return out


def centre_on(page: Any, probe: MarkerProbe) -> tuple[float, float]:
    """Centre the map on a probed marker again; its pixel in the page."""
    hit = page.evaluate(_TOPMOST_JS, probe.index)
    return float(hit["x"]), float(hit["y"])


def hex_rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
