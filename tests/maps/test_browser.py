"""Each kind of map opened from disk in headless Chromium with the network blocked.

One browser per module. Every test asserts: no request but the page itself,
Leaflet 1.9.4 loaded, no page error, the expected number of drawn layers, the
verdict text; and saves a screenshot under test-artifacts/maps/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from chiploc import maps, solver

from ._browser import OpenedMap, centre_on, hex_rgb, open_map, probe_markers
from ._scenarios import LANDMARKS, fleet, scenario

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_COUNT_JS = """(name) => {
  const l = window.chiploc.layers[name];
  if (!l) return null;
  let n = 0;
  const walk = (x) => {
    if (x.getLayers && !(x instanceof L.GeoJSON)) { x.getLayers().forEach(walk); } else { n += 1; }
  };
  if (l instanceof L.FeatureGroup && !(l instanceof L.GeoJSON)) { l.getLayers().forEach(walk); }
  else { n = 1; }
  return n;
}"""
_CIRCLES_JS = """(name) => window.chiploc.layers[name].getLayers()
  .filter((x) => x instanceof L.CircleMarker).length"""


def _check_common(m: OpenedMap) -> None:
    assert m.foreign_requests == [], m.foreign_requests
    assert m.blocked == []
    assert m.errors == []
    assert m.page.evaluate("window.L.version") == maps.LEAFLET_VERSION
    assert m.page.evaluate("window.chiploc.map.hasLayer(window.chiploc.layers.basemap)")


def _write(tmp_path: Path, name: str, page: str) -> Path:
    path = tmp_path / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    return path


def _shot(m: OpenedMap, artifacts: Path, name: str) -> None:
    m.page.screenshot(path=str(artifacts / f"{name}.png"))


def _check_borders_agree(m: OpenedMap, iso3: str) -> None:
    """Where the display borders and the authorized zone are the same border (here the whole
    of one country's), they are one line in the opening view: within a pixel."""
    import math

    basemap = m.page.evaluate("window.chiploc.layers.basemap.toGeoJSON()")
    (feature,) = [f for f in basemap["features"] if f["properties"]["iso3"] == iso3]
    zone = shape(
        m.page.evaluate("window.chiploc.layers.authorized.toGeoJSON()")["features"][0]["geometry"]
    )
    apart_deg = shapely.hausdorff_distance(shape(feature["geometry"]).boundary, zone.boundary)
    zoom = m.page.evaluate("window.chiploc.map.getZoom()")
    lat = zone.centroid.y
    px_per_deg = 256 * 2**zoom / 360 / math.cos(math.radians(lat))
    assert apart_deg * px_per_deg <= 1.0, f"{apart_deg:.4f}° apart: {apart_deg * px_per_deg:.1f} px"


_LEGEND_JS = """() => Array.from(document.querySelectorAll('[data-chiploc-legend]'))
  .map((e) => e.getAttribute('data-chiploc-legend'))"""


def _check_legend(m: OpenedMap, result: dict[str, Any]) -> None:
    """The legend lists what is drawn, and only that."""
    lms = result["landmarks"]
    conflicting = set(result.get("conflicting_landmarks") or ())
    binding = set(result.get("binding_landmarks") or ())
    drawn = [lm for lm in lms if lm["radius_km"] is not None and lm["id"] not in conflicting]
    want = set()
    if result["region"] is not None:
        want.add("region")
    if any(lm["binding"] or lm["id"] in binding for lm in drawn):
        want.add("binding")
    if any(not (lm["binding"] or lm["id"] in binding) for lm in drawn):
        want.add("not-binding")
    if conflicting:
        want.add("conflicting")
    if any(lm["id"] not in conflicting for lm in lms):
        want.add("landmark")
    want.add("authorized")
    if result["estimate"] is not None:
        want.add("estimate")
    assert set(m.page.evaluate(_LEGEND_JS)) == want


_BOXES_JS = """() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom]; };
  const labels = Array.from(document.querySelectorAll('.chiploc-label-icon'))
    .filter((e) => getComputedStyle(e).visibility !== 'hidden')
    .map((e) => box(e.querySelector('.chiploc-label') || e));
  const fixed = Array.from(document.querySelectorAll('.chiploc-box, .leaflet-control')).map(box);
  return {labels: labels, fixed: fixed,
          total: document.querySelectorAll('.chiploc-label-icon').length};
}"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def _check_labels_apart(m: OpenedMap) -> None:
    """No label shown covers another, the banner, the legend or a control."""
    for zoom_in in (0, 3):
        if zoom_in:
            m.page.evaluate(f"void window.chiploc.map.zoomIn({zoom_in}, {{animate: false}})")
        got = m.page.evaluate(_BOXES_JS)
        if got["total"]:
            assert got["labels"], "every label hidden"
        for i, a in enumerate(got["labels"]):
            for b in got["labels"][i + 1 :] + got["fixed"]:
                assert not _overlap(a, b), (a, b)
    m.page.evaluate("void window.chiploc.map.zoomOut(3, {animate: false})")


_NUMBER_WITH_UNIT = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.(\d+))?)\s?(km²|km|ms|µs)(?!\w)")
_TOOLTIPS_JS = """() => { const out = [];
  window.chiploc.map.eachLayer((l) => { const t = l.getTooltip && l.getTooltip();
    if (t) { const d = document.createElement('div');
      d.innerHTML = String(t.getContent()).replace(/<br\\s*\\/?>/g, '\\n');
      out.push(d.textContent); } });
  return out; }"""


def _check_one_precision_per_unit(m: OpenedMap) -> None:
    """Every number of one unit (km, km², ms) is shown to the same number of decimals."""
    # The scale bar is a ruler in round numbers, not a measurement: left out.
    body = m.page.evaluate(
        """() => { const s = document.querySelector('.leaflet-control-scale');
        s.style.display = 'none'; const t = document.body.innerText; s.style.display = '';
        return t; }"""
    )
    texts = [body, *m.page.evaluate(_TOOLTIPS_JS)]
    decimals: dict[str, set[int]] = {}
    for text in texts:
        for match in _NUMBER_WITH_UNIT.finditer(text):
            decimals.setdefault(match.group(3), set()).add(len(match.group(2) or ""))
    assert decimals, "no number with a unit on the map"
    # One format too: thousands always separated (1,195.4 km, never 1195.4 km).
    for text in texts:
        assert not re.search(r"(?<![\d,.])\d{4,}(?:\.\d+)?\s?(?:km|ms)\b", text), text
    for unit, seen in decimals.items():
        assert len(seen) == 1, f"{unit} shown at {sorted(seen)} decimals"


@pytest.mark.parametrize("name", ["compliant", "small", "violation", "inconsistent", "estimate"])
def test_chip_map(browser: Any, tmp_path: Path, artifacts: Path, name: str) -> None:
    result = scenario(name)
    path = _write(tmp_path, f"chip-{name}", maps.chip_map(result))
    with open_map(browser, path) as m:
        _check_common(m)
        n_landmarks = len(result["landmarks"])
        assert m.page.evaluate(_COUNT_JS, "bounds") == n_landmarks
        assert m.page.evaluate(_CIRCLES_JS, "landmarks") == n_landmarks
        has_region = result["region"] is not None
        assert m.page.evaluate("'region' in window.chiploc.layers") is has_region
        assert m.page.evaluate("'estimate' in window.chiploc.layers") is (
            result["estimate"] is not None
        )
        assert m.page.evaluate("'authorized' in window.chiploc.layers")
        banner = m.page.inner_text("#chiploc-banner")
        assert result["verdict"] in banner
        assert "margin" in banner
        assert result["model"] in banner
        if not result["proof"]:
            assert "not a proof" in banner
        if result["verdict"] == "INCONSISTENT":
            for lm in result["conflicting_landmarks"]:
                assert lm in banner
        if result["estimate"] is not None:
            assert "estimate — not a proof" in m.page.inner_text("body")
        # The scale bar, and the view fitted to the region (or to the landmarks).
        assert m.page.locator(".leaflet-control-scale").count() == 1
        view = m.page.evaluate("window.chiploc.map.getBounds().toBBoxString()")
        w, s, e, n = (float(v) for v in view.split(","))
        if has_region:
            # The region and the authorized zone together.
            zone = solver.load_region(result["region_spec"]).geometry
            both = shapely.union(shape(result["region"]), zone).bounds
            assert (w, s) <= (both[0], both[1])
            assert (both[2], both[3]) <= (e, n)
        elif result["verdict"] == "INCONSISTENT":
            # Every conflicting bound whole.
            for lm in result["landmarks"]:
                if lm["id"] in result["conflicting_landmarks"]:
                    disk = solver.geodesic_disk(lm["lat"], lm["lon"], lm["radius_km"])
                    bw, bs, be, bn = disk.bounds
                    assert max(w - bw, s - bs, be - e, bn - n) <= 0.0, lm["id"]
        else:
            for lm in result["landmarks"]:
                assert s <= lm["lat"] <= n
                assert w <= lm["lon"] <= e
        if result["region_spec"] == "country:DEU":
            _check_borders_agree(m, "DEU")
        _check_legend(m, result)
        _check_labels_apart(m)
        _check_one_precision_per_unit(m)
        _shot(m, artifacts, f"chip-{name}")
        if name == "small":
            # Zooming out shows every landmark; zooming back shows the region.
            m.page.click("[data-chiploc-zoom='Zoom to all']")
            _shot(m, artifacts, "chip-small-zoomed-out")
            m.page.click("[data-chiploc-zoom='Zoom to region']")
            assert m.page.evaluate("window.chiploc.map.getZoom()") >= 11


_UNDER_BOXES_JS = """() => {
  const map = window.chiploc.map, r0 = map.getContainer().getBoundingClientRect();
  const boxes = Array.from(document.querySelectorAll('.leaflet-control, .chiploc-box'))
    .map((e) => e.getBoundingClientRect());
  const hidden = [];
  for (const name of Object.keys(window.chiploc.layers)) {
    const g = window.chiploc.layers[name];
    if (name === 'basemap' || !g.getLayers) { continue; }
    g.getLayers().forEach((l) => {
      const v = g.getVisibleParent ? g.getVisibleParent(l) : l;
      if (!v) { return; }
      const p = map.latLngToContainerPoint(v.getLatLng());
      const x = r0.left + p.x, y = r0.top + p.y;
      if (boxes.some((b) => b.left <= x && x <= b.right && b.top <= y && y <= b.bottom)) {
        hidden.push(name + ' ' + l.getLatLng().toString());
      }
    });
  }
  return hidden;
}"""


def _check_no_chip_opens_under_a_box(m: OpenedMap) -> None:
    """At the opening view no chip (or its cluster) sits under the panel or a control."""
    assert m.page.evaluate(_UNDER_BOXES_JS) == []


def _check_markers_on_top(m: OpenedMap, points: Any, clustered: bool, zoom: int | None) -> None:
    """Every chip a person can see at its own pixel: the marker (or its cluster) is the
    topmost element there, in the verdict's colour, and a click there opens its popup."""
    probed = 0
    for k, verdict in enumerate(maps.VERDICTS):
        if not any(r[2] == k for r in points.rows):
            continue
        # Clusters stand ~45 px apart by design; a cluster icon is 30-46 px wide.
        probes = probe_markers(
            m.page, verdict, zoom=zoom, min_isolation_px=18.0 if clustered else 24.0
        )
        assert probes, f"no {verdict} marker far enough from the others to probe"
        for p in probes:
            assert p.seen_is_marker, f"{verdict} marker #{p.index} is under {p.seen}"
            assert p.clicked_is_marker, f"a click on {verdict} marker #{p.index} hits {p.clicked}"
            if not p.cluster:
                # fillOpacity 0.95: the marker's colour within 5 % of whatever lies beneath.
                want = hex_rgb(maps.VERDICT_COLOURS[verdict])
                assert all(abs(a - b) <= 16 for a, b in zip(p.rgb, want, strict=True)), (
                    f"{verdict} marker #{p.index} shows {p.rgb}, not its colour {want}"
                )
        probed += len(probes)
        plain = [p for p in probes if p.row is not None]
        if plain and not clustered:
            p = plain[0]
            m.page.mouse.click(*centre_on(m.page, p))
            assert points.rows[p.row][3] in m.page.inner_text(".leaflet-popup-content")
            m.page.evaluate("void window.chiploc.map.closePopup()")
            m.page.wait_for_timeout(400)  # Leaflet fades a closed popup out over 200 ms
    assert probed > 0


@pytest.mark.parametrize(("n", "clustered"), [(6, False), (120, False), (420, True)])
def test_fleet_map(browser: Any, tmp_path: Path, artifacts: Path, n: int, clustered: bool) -> None:
    results = [
        *fleet(n),
        # A chip with no answer at all: counted and listed, never dropped.
        {
            "target": "fleet-silent",
            "verdict": "UNREACHABLE",
            "region_center": None,
            "estimate": None,
            "margin_km": None,
        },
    ]
    points = maps.fleet_points(results)
    path = _write(tmp_path, f"fleet-{n}", maps.fleet_map(results))
    with open_map(browser, path) as m:
        _check_common(m)
        for verdict in maps.VERDICTS:
            expected = sum(1 for r in points.rows if maps.VERDICTS[r[2]] == verdict)
            assert m.page.evaluate(_COUNT_JS, verdict) == expected, verdict
            cell = m.page.locator(f"[data-chiploc-count='{verdict}']").inner_text()
            assert int(cell.replace(",", "")) == points.counts[verdict]
        assert m.page.evaluate("!!window.L.MarkerClusterGroup") is clustered
        assert (
            m.page.evaluate(
                "!!L.MarkerClusterGroup"
                " && window.chiploc.layers.COMPLIANT instanceof L.MarkerClusterGroup"
            )
            is clustered
        )
        assert "fleet-silent" in m.page.inner_text("#chiploc-unplaced")
        _shot(m, artifacts, f"fleet-{n}")
        _check_no_chip_opens_under_a_box(m)
        _check_markers_on_top(m, points, clustered, 8 if n in range(50, 300) else None)
        # One toggle per verdict in the layer control; unticking hides that layer.
        labels = m.page.locator(".leaflet-control-layers-overlays label")
        assert labels.count() == len(maps.VERDICTS) + 1
        m.page.locator(".leaflet-control-layers-overlays label", has_text="COMPLIANT").click()
        assert not m.page.evaluate("window.chiploc.map.hasLayer(window.chiploc.layers.COMPLIANT)")


def test_coverage_map(browser: Any, tmp_path: Path, artifacts: Path) -> None:
    landmarks = [
        maps.CoverageLandmark(id=k, lat=v[0], lon=v[1])
        for k, v in LANDMARKS.items()
        if k in ("fra", "ber", "muc", "ham", "cgn")
    ]
    region = solver.load_region("country:DEU")
    grid = maps.coverage_grid(landmarks, region, overhead_ms=0.05, max_cells=120)
    assert 0 < grid.covered < len(grid.cells)
    path = _write(tmp_path, "coverage", maps.coverage_map(grid, region.geometry))
    with open_map(browser, path) as m:
        _check_common(m)
        assert m.page.evaluate("'covered' in window.chiploc.layers")
        assert m.page.evaluate("'uncovered' in window.chiploc.layers")
        assert m.page.evaluate(_CIRCLES_JS, "landmarks") == len(landmarks)
        banner = m.page.inner_text("#chiploc-banner")
        assert "best case" in banner.lower()
        assert f"{grid.covered:,} of {len(grid.cells):,} cells" in banner
        _shot(m, artifacts, "coverage")


def test_tiles_are_requested_only_when_asked(browser: Any, tmp_path: Path) -> None:
    url = "https://tiles.invalid/{z}/{x}/{y}.png"
    path = _write(tmp_path, "tiles", maps.chip_map(scenario("compliant"), tiles=url))
    with open_map(browser, path) as m:
        assert m.foreign_requests  # the opted-in tiles, refused by the router
        assert all(r.startswith("https://tiles.invalid/") for r in m.foreign_requests)
