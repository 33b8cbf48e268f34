"""The fleet map: every chip as one point coloured by verdict, a toggleable layer per verdict.

Invariants: every chip is accounted for — placed at its ``region_center`` (else
its estimate, said so in its popup), or counted and listed in the panel as
having no position; the counts in the panel are over all chips. The data goes
into the page as one compact JSON array and a short loop creates the markers,
so 10,000 chips stay a few MB and load in a few seconds; past
``cluster_threshold`` placed chips the points are clustered
(Leaflet.markercluster, inlined).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from branca.element import Element
from folium import LayerControl
from folium.map import Layer
from folium.template import Template

from chiploc.common.text import plural
from chiploc.maps._html import (
    JsBlock,
    OfflineMap,
    add_basemap,
    figure_of,
    html_control,
    render_html,
)
from chiploc.maps._layers import VERDICT_COLOURS, VERDICTS, FleetPoints, fleet_points

__all__ = ["DEFAULT_CLUSTER_THRESHOLD", "fleet_map", "fleet_map_from_points"]

DEFAULT_CLUSTER_THRESHOLD = 300
_UNPLACED_LISTED = 100


class _VerdictGroup(Layer):
    """One verdict's points: a marker cluster group, or a plain feature group."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {% if this.cluster -%}
        L.markerClusterGroup({
            chunkedLoading: true,
            showCoverageOnHover: false,
            maxClusterRadius: 45,
            iconCreateFunction: function(c) {
                var n = c.getChildCount();
                var s = n < 100 ? 30 : n < 1000 ? 38 : 46;
                return L.divIcon({
                    html: '<div><span>' + n + '</span></div>',
                    className: 'marker-cluster chiploc-cluster-{{ this.index }}',
                    iconSize: L.point(s, s)
                });
            }
        });
        {%- else -%}
        L.featureGroup();
        {%- endif %}
        {% endmacro %}
        """
    )

    def __init__(self, *, name: str, index: int, cluster: bool) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "VerdictGroup"
        self.index = index
        self.cluster = cluster


_POINTS_JS = """
var V = DATA.verdicts, C = DATA.colours, rows = DATA.rows;
var groups = DATA.groups.map(function(n) { return window[n]; });
var renderer = L.canvas({padding: 0.5});
var per = groups.map(function() { return []; });
for (var i = 0; i < rows.length; i++) {
  var r = rows[i];
  per[r[2]].push(L.circleMarker([r[0], r[1]], {
    renderer: renderer, radius: 5, weight: 1, color: '#ffffff', fillColor: C[r[2]],
    fillOpacity: 0.95, chiplocRow: i
  }));
}
function popup(r) {
  var div = document.createElement('div');
  var b = document.createElement('b'); b.textContent = r[3]; div.appendChild(b);
  var lines = [V[r[2]],
    r[4] === null ? 'margin —' : 'margin ' + r[4].toFixed(1) + ' km',
    r[5] === 'r' ? 'at a point inside the proven region' : 'at the estimate \\u2014 not a proof',
    r[0].toFixed(4) + ', ' + r[1].toFixed(4)];
  lines.forEach(function(t) { div.appendChild(document.createElement('br'));
    div.appendChild(document.createTextNode(t)); });
  return div;
}
window.chiplocPending = (window.chiplocPending || 0) + groups.length;
groups.forEach(function(g, k) {
  g.on('click', function(ev) {
    var r = rows[ev.layer.options.chiplocRow];
    if (r === undefined) { return; }
    L.popup().setLatLng(ev.layer.getLatLng()).setContent(popup(r)).openOn(map);
  });
  if (DATA.cluster) {
    g.options.chunkProgress = function(done, total) {
      if (done >= total) { window.chiplocPending -= 1; }
    };
    if (per[k].length === 0) { window.chiplocPending -= 1; } else { g.addLayers(per[k]); }
  } else {
    per[k].forEach(function(m) { g.addLayer(m); });
    window.chiplocPending -= 1;
  }
});
"""

# After the panel and the layer control exist: fit the chips between the boxes at the top and
# at the bottom of the map (measured), so that no chip opens hidden under a box.
_FIT_JS = """
if (!DATA.fit) { map.setView([20, 0], 2, {animate: false}); return; }
var r0 = map.getContainer().getBoundingClientRect(), top = 0, bottom = 0;
document.querySelectorAll('.leaflet-control, .chiploc-box').forEach(function(e) {
  var r = e.getBoundingClientRect();
  if (r.height === 0) { return; }
  if (r.top - r0.top < r0.height / 2) { top = Math.max(top, r.bottom - r0.top); }
  else { bottom = Math.max(bottom, r0.bottom - r.top); }
});
map.fitBounds(DATA.fit, {paddingTopLeft: [20, top + 15], paddingBottomRight: [20, bottom + 15],
                         maxZoom: 10, animate: false});
"""


def _panel_html(points: FleetPoints) -> str:
    rows = [f"<h3>Fleet: {plural(points.total, 'chip')}</h3><table>"]
    for verdict in VERDICTS:
        colour = VERDICT_COLOURS[verdict]
        rows.append(
            f"<tr><td><span class='chiploc-dot' style='background:{colour}'></span>{verdict}</td>"
            f"<td style='text-align:right' data-chiploc-count='{verdict}'>"
            f"{points.counts[verdict]:,}</td></tr>"
        )
    rows.append("</table>")
    placed_by_estimate = sum(1 for r in points.rows if r[5] == "e")
    if placed_by_estimate:
        rows.append(
            f"<div class='chiploc-small'>{placed_by_estimate:,} placed at their estimate "
            "(not a proof): no proven region</div>"
        )
    if points.unplaced:
        listed = ", ".join(
            f"{escape(target)} ({verdict})"
            for target, verdict in points.unplaced[:_UNPLACED_LISTED]
        )
        more = len(points.unplaced) - _UNPLACED_LISTED
        rows.append(
            f"<div id='chiploc-unplaced'><b>{len(points.unplaced):,} without a position</b> "
            "(no region, no estimate):"
            f"<div class='chiploc-small' style='max-height:120px;overflow:auto'>{listed}"
            + (f" … and {more:,} more" if more > 0 else "")
            + "</div></div>"
        )
    rows.append(
        "<div class='chiploc-small'>points: a point inside each chip's proven region; "
        "borders simplified, display only</div>"
    )
    return "".join(rows)


def _cluster_css() -> str:
    parts = []
    for i, verdict in enumerate(VERDICTS):
        colour = VERDICT_COLOURS[verdict]
        parts.append(
            f".chiploc-cluster-{i} {{ background-color: {colour}55; }}"
            f" .chiploc-cluster-{i} div {{ background-color: {colour}; color: #fff;"
            " font-weight: bold; }"
        )
    return "\n".join(parts)


def fleet_map_from_points(
    points: FleetPoints,
    *,
    tiles: str | None = None,
    cluster_threshold: int = DEFAULT_CLUSTER_THRESHOLD,
) -> str:
    """Render prepared :class:`FleetPoints` as a self-contained offline HTML page."""
    cluster = len(points.rows) > cluster_threshold
    m = OfflineMap(tiles=tiles)
    basemap = add_basemap(m, tiles=tiles, tolerance_deg=0.1)
    named: dict[str, Any] = {"basemap": basemap}
    groups = []
    for i, verdict in enumerate(VERDICTS):
        colour = VERDICT_COLOURS[verdict]
        group = _VerdictGroup(
            name=f"<span style='color:{colour}'>●</span> {verdict} ({points.counts[verdict]:,})",
            index=i,
            cluster=cluster,
        )
        m.add_child(group)
        groups.append(group)
        named[verdict] = group
    fit = None
    if points.rows:
        lats = [r[0] for r in points.rows]
        lons = [r[1] for r in points.rows]
        fit = [[min(lats), min(lons)], [max(lats), max(lons)]]
    m.add_child(
        JsBlock(
            _POINTS_JS,
            {
                "verdicts": list(VERDICTS),
                "colours": [VERDICT_COLOURS[v] for v in VERDICTS],
                "rows": [list(r) for r in points.rows],
                "groups": [g.get_name() for g in groups],
                "cluster": cluster,
            },
        )
    )
    m.add_child(html_control(_panel_html(points), position="bottomleft", cls="chiploc-panel"))
    m.add_child(LayerControl(position="topright", collapsed=False))
    m.add_child(JsBlock(_FIT_JS, {"fit": fit}))
    figure_of(m).header.add_child(
        Element("<style>" + _cluster_css() + "</style>"), name="cluster_css"
    )
    return render_html(
        m,
        title=f"chiploc fleet — {plural(points.total, 'chip')}",
        layers=named,
        cluster=cluster,
        tiles=tiles,
    )


def fleet_map(
    results: Iterable[Mapping[str, Any]],
    *,
    tiles: str | None = None,
    cluster_threshold: int = DEFAULT_CLUSTER_THRESHOLD,
) -> str:
    """The fleet map of many ``SolveResult.to_json_dict()`` objects, as one offline HTML page."""
    return fleet_map_from_points(
        fleet_points(results), tiles=tiles, cluster_threshold=cluster_threshold
    )
