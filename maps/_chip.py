"""The chip map: one result's evidence — landmarks, their bounds, the proven region, the verdict.

Invariants: every layer comes from :func:`maps.chip_layers` (the solver's own
polygons); the page is offline (:func:`maps._html.render_html`); the estimate
is never styled like the proof and always carries the words "not a proof".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from typing import Any

import folium

from chiploc.common.text import plural
from chiploc.maps._html import (
    GeoJsonLayer,
    JsBlock,
    OfflineMap,
    add_banner,
    add_basemap,
    attach,
    html_control,
    label_marker,
    render_html,
    tooltip,
    zoom_control,
)
from chiploc.maps._layers import (
    VERDICT_COLOURS,
    ChipLayers,
    LandmarkLayer,
    chip_layers,
    settle_lines,
)

__all__ = ["ESTIMATE_LABEL", "chip_map", "chip_map_from_layers"]

ESTIMATE_LABEL = "estimate — not a proof"
_REGION_STYLE_WEIGHT = 3
_CONFLICT_COLOUR = "#e7298a"
_BINDING_COLOUR = "#2c5aa0"
_BOUND_COLOUR = "#6b7c93"
_AUTHORIZED_COLOUR = "#1f78b4"
_ESTIMATE_COLOUR = "#111111"


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f} {unit}"


def _fmt_area(area_km2: float | None) -> str:
    if area_km2 is None:
        return "—"
    if 0.0 < area_km2 < 0.05:
        return "< 0.1 km²"
    return _fmt(area_km2, "km²", 1)


def _landmark_html(lm: LandmarkLayer) -> str:
    role = "conflicting" if lm.conflicting else "binding" if lm.binding else "not binding"
    return (
        f"<b>landmark {escape(lm.id)}</b> ({role})<br>"
        f"min RTT {_fmt(lm.rtt_ms, 'ms', 3)}"
        + (f" - overhead {_fmt(lm.overhead_ms, 'ms', 3)}" if lm.overhead_ms else "")
        + (
            "<br>bound covers the whole Earth (no constraint)"
            if lm.radius_km is None
            else f"<br>bound radius {_fmt(lm.radius_km, 'km')}"
        )
        + f"<br><span class='chiploc-small'>{lm.lat:.4f}, {lm.lon:.4f}</span>"
    )


def _banner_html(layers: ChipLayers) -> str:
    colour = VERDICT_COLOURS[layers.verdict]
    kind = (
        "proof (vacuum speed of light)"
        if layers.proof
        else f"ESTIMATE — {escape(layers.model)} model, not a proof"
    )
    rows = [
        f"<h3 style='color:{colour}'>{escape(layers.verdict)}"
        f" <span style='color:#222;font-weight:normal'>— chip {escape(layers.target)}</span></h3>",
        "<table>",
        f"<tr><td>margin</td><td><b>{_fmt(layers.margin_km, 'km')}</b></td></tr>",
        f"<tr><td>model</td><td>{escape(layers.model)}: {kind}</td></tr>",
        f"<tr><td>authorized</td><td>{escape(layers.region_spec)}</td></tr>",
        f"<tr><td>tolerate</td><td>{plural(layers.tolerate, 'landmark')} may be dropped</td></tr>",
    ]
    if layers.area_km2 is not None:
        rows.append(f"<tr><td>region</td><td>{_fmt_area(layers.area_km2)}</td></tr>")
    rows.append("</table>")
    if layers.message:
        rows.append(f"<div>{escape(layers.message)}</div>")
    if layers.verdict == "INCONSISTENT":
        conflicting = [lm.id for lm in layers.landmarks if lm.conflicting]
        rows.append(
            "<div>The bounds do not intersect: no point satisfies every landmark."
            + (f" Conflicting (pink): {escape(', '.join(conflicting))}." if conflicting else "")
            + "</div>"
        )
    elif layers.verdict == "UNREACHABLE":
        rows.append("<div>No valid answer: nothing was proven about this chip.</div>")
    hints = settle_lines(layers.settle)
    if hints:
        rows.append(
            "<div class='chiploc-small'>Would settle it: "
            + "; ".join(escape(h) for h in hints[:3])
            + "</div>"
        )
    return "".join(rows)


def _legend_html(layers: ChipLayers) -> str:
    """The legend: one line per kind of thing drawn on this map, and only those."""
    colour = VERDICT_COLOURS[layers.verdict]
    proof_title = "Proof" if layers.proof else f"Bounds ({escape(layers.model)} model, not a proof)"
    drawn = [lm for lm in layers.landmarks if lm.bound is not None]
    items: list[tuple[str, str]] = []
    if layers.region is not None:
        items.append(
            (
                "region",
                f"<span class='chiploc-swatch' style='background:{colour}66;border-color:{colour}'>"
                "</span>proven region (the chip is inside)",
            )
        )
    if any(lm.binding and not lm.conflicting for lm in drawn):
        items.append(
            (
                "binding",
                f"<span class='chiploc-swatch' style='background:none;"
                f"border-color:{_BINDING_COLOUR}'></span>landmark bound (binding)",
            )
        )
    if any(not lm.binding and not lm.conflicting for lm in drawn):
        items.append(
            (
                "not-binding",
                f"<span class='chiploc-swatch' style='background:none;border-color:{_BOUND_COLOUR};"
                "border-style:dashed'></span>landmark bound (not binding)",
            )
        )
    if any(lm.conflicting for lm in layers.landmarks):
        items.append(
            (
                "conflicting",
                f"<span class='chiploc-swatch' style='background:none;"
                f"border-color:{_CONFLICT_COLOUR}'></span>conflicting landmark and its bound",
            )
        )
    if any(not lm.conflicting for lm in layers.landmarks):
        items.append(
            (
                "landmark",
                f"<span class='chiploc-dot' style='background:{_BINDING_COLOUR}'></span>landmark",
            )
        )
    if layers.authorized is not None:
        items.append(
            (
                "authorized",
                f"<span class='chiploc-swatch' style='background:{_AUTHORIZED_COLOUR}22;"
                f"border-color:{_AUTHORIZED_COLOUR};border-style:dashed'></span>authorized region",
            )
        )
    html = [f"<b>{proof_title}</b>"]
    html += [f"<div data-chiploc-legend='{key}'>{text}</div>" for key, text in items]
    if layers.estimate is not None:
        html.append(
            "<hr style='margin:4px 0'><b>Estimate</b>"
            "<div data-chiploc-legend='estimate'>"
            "<span class='chiploc-dot' style='background:#fff;"
            f"border:3px dotted {_ESTIMATE_COLOUR}'></span>{ESTIMATE_LABEL}</div>"
        )
    html.append(
        "<span class='chiploc-small'>borders: Natural Earth, simplified, display only</span>"
    )
    return "".join(html)


# Labels never cover one another, the banner, the legend or a control: after every move,
# each label (in drawing order: landmarks first) is shown only if its text box misses all
# those already shown and every box on the map; the marker's tooltip still names it.
_DECLUTTER_JS = """
function chiplocDeclutter() {
  var boxes = Array.prototype.map.call(
    document.querySelectorAll('.chiploc-box, .leaflet-control'),
    function(e) { return e.getBoundingClientRect(); });
  var kept = [];
  var overlaps = function(a, b) {
    return !(a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top);
  };
  document.querySelectorAll('.chiploc-label-icon').forEach(function(icon) {
    icon.style.visibility = '';
    var r = (icon.querySelector('.chiploc-label') || icon).getBoundingClientRect();
    var hit = boxes.concat(kept).some(function(b) { return overlaps(r, b); });
    if (hit) { icon.style.visibility = 'hidden'; } else { kept.push(r); }
  });
}
map.on('zoomend moveend overlayadd overlayremove', chiplocDeclutter);
window.chiplocDeclutter = chiplocDeclutter;
chiplocDeclutter();
"""


def _bounds_list(b: tuple[tuple[float, float], tuple[float, float]]) -> list[list[float]]:
    return [[b[0][0], b[0][1]], [b[1][0], b[1][1]]]


def chip_map_from_layers(layers: ChipLayers, *, tiles: str | None = None) -> str:
    """Render prepared :class:`ChipLayers` as a self-contained offline HTML page."""
    m = OfflineMap(tiles=tiles)
    named: dict[str, Any] = {}
    colour = VERDICT_COLOURS[layers.verdict]

    basemap = add_basemap(m, tiles=tiles, view=layers.focus_bounds)
    named["basemap"] = basemap

    if layers.authorized is not None:
        authorized = GeoJsonLayer(
            layers.authorized,
            name=f"Authorized region ({escape(layers.region_spec)})",
            style={
                "color": _AUTHORIZED_COLOUR,
                "weight": 2,
                "dashArray": "6 4",
                "fillColor": _AUTHORIZED_COLOUR,
                "fillOpacity": 0.12,
            },
            interactive=False,
        )
        m.add_child(authorized)
        named["authorized"] = authorized

    bounds = folium.FeatureGroup(name="Landmark bounds (geodesic, circumscribing)")
    for lm in layers.landmarks:
        if lm.bound is None:  # whole-Earth bound: nothing to draw, the marker says so
            continue
        style: dict[str, Any]
        if lm.conflicting:
            style = {"color": _CONFLICT_COLOUR, "weight": 3, "fill": False}
        elif lm.binding:
            style = {"color": _BINDING_COLOUR, "weight": 2, "fill": False}
        else:
            style = {"color": _BOUND_COLOUR, "weight": 1.2, "dashArray": "4 4", "fill": False}
        bounds.add_child(
            GeoJsonLayer(
                lm.bound,
                name=f"bound {lm.id}",
                style=style,
                control=False,
                tooltip_html=_landmark_html(lm),
            )
        )
    m.add_child(bounds)
    named["bounds"] = bounds

    if layers.region is not None:
        region = GeoJsonLayer(
            layers.region,
            name="Proven region" if layers.proof else "Region (estimate model)",
            style={
                "color": colour,
                "weight": _REGION_STYLE_WEIGHT,
                "fillColor": colour,
                "fillOpacity": 0.4,
            },
            tooltip_html=(
                f"<b>{'proven' if layers.proof else 'estimated'} region</b><br>"
                f"area {_fmt_area(layers.area_km2)}<br>"
                f"across ≈ {_fmt(layers.region_extent_km, 'km')}"
            ),
        )
        m.add_child(region)
        named["region"] = region
        if layers.small_region and layers.region_center is not None:
            halo = folium.CircleMarker(
                location=list(layers.region_center),
                radius=16,
                color=colour,
                weight=3,
                fill=False,
                dash_array="3 3",
            )
            attach(
                halo,
                tooltip(
                    f"proven region, {_fmt(layers.region_extent_km, 'km')} across: "
                    "use “Zoom to region”"
                ),
            )
            m.add_child(halo)
            named["halo"] = halo

    markers = folium.FeatureGroup(name="Landmarks")
    permanent = len(layers.landmarks) <= 12
    for lm in layers.landmarks:
        fill = _CONFLICT_COLOUR if lm.conflicting else _BINDING_COLOUR
        marker = folium.CircleMarker(
            location=[lm.lat, lm.lon],
            radius=7 if lm.conflicting else 6,
            color="#ffffff",
            weight=2,
            fill=True,
            fill_color=fill,
            fill_opacity=1.0,
        )
        attach(marker, tooltip(_landmark_html(lm)))
        if permanent:
            label = label_marker(
                [lm.lat, lm.lon], f"<div class='chiploc-label'>{escape(lm.id)}</div>"
            )
            markers.add_child(label)
        markers.add_child(marker)
    m.add_child(markers)
    named["landmarks"] = markers

    if layers.estimate is not None:
        estimate = folium.FeatureGroup(name=f"Estimate ({ESTIMATE_LABEL})")
        ring = folium.CircleMarker(
            location=list(layers.estimate),
            radius=9,
            color=_ESTIMATE_COLOUR,
            weight=3,
            dash_array="2 4",
            fill=True,
            fill_color="#ffffff",
            fill_opacity=0.9,
        )
        model = escape(layers.estimate_model or "unknown")
        attach(
            ring,
            tooltip(
                f"<b>{ESTIMATE_LABEL}</b><br>best guess ({model} model)<br>"
                f"{layers.estimate[0]:.4f}, {layers.estimate[1]:.4f}"
            ),
        )
        estimate.add_child(ring)
        estimate.add_child(
            label_marker(
                layers.estimate,
                f"<div class='chiploc-label' style='color:#000'>{ESTIMATE_LABEL}</div>",
                icon_size=(170, 16),
                icon_anchor=(-12, -6),
            )
        )
        m.add_child(estimate)
        named["estimate"] = estimate

    m.add_child(html_control(_legend_html(layers), position="bottomright", cls="chiploc-legend"))
    buttons: list[tuple[str, list[list[float]]]] = []
    if layers.region_bounds is not None:
        buttons.append(("Zoom to region", _bounds_list(layers.region_bounds)))
    buttons.append(("Zoom to all", _bounds_list(layers.all_bounds)))
    m.add_child(zoom_control(buttons, initial=_bounds_list(layers.focus_bounds)))
    m.add_child(folium.LayerControl(position="topright", collapsed=True))

    add_banner(m, _banner_html(layers), colour=colour)
    m.add_child(JsBlock(_DECLUTTER_JS))
    return render_html(
        m,
        title=f"chiploc — {layers.target}: {layers.verdict}",
        layers=named,
        tiles=tiles,
    )


def chip_map(result: Mapping[str, Any], *, authorized: Any = None, tiles: str | None = None) -> str:
    """The chip map of one ``SolveResult.to_json_dict()`` as a self-contained HTML page.

    ``authorized`` (shapely, lon/lat) overrides loading ``result["region_spec"]``;
    ``tiles`` is an explicit opt-in tile URL template (default: no tiles).
    """
    return chip_map_from_layers(chip_layers(result, authorized=authorized), tiles=tiles)
