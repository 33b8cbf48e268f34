"""Offline HTML: a folium map with Leaflet inlined and no reference to the network.

Invariants enforced here:

- A page written by :func:`render_html` contains no ``<script src>``, no
  ``<link href>`` and no CSS ``url()`` that would load anything: folium's CDN
  defaults are removed (:class:`OfflineMap` has empty ``default_js`` /
  ``default_css``), Leaflet 1.9.4 (and Leaflet.markercluster 1.5.3 when asked)
  are inlined from ``maps/_vendor/``, and the PNGs Leaflet's CSS names are
  inlined as ``data:`` URIs. :func:`network_references` finds what would load,
  and :func:`render_html` refuses to return a page that has any, except the
  tile URL the caller opted into with ``tiles=``.
- Every string that comes from a result (ids, messages) reaches the page through
  JSON (``tojson``, which escapes ``<``, ``>``, ``&``, ``'``) and is put in the DOM
  with ``textContent`` or after :func:`html.escape`; nothing is spliced raw into
  JavaScript or HTML.
- The page publishes ``window.chiploc`` (``map``, ``layers`` by name, ``readyMs``
  measured from navigation start) for tests and benchmarks.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from html import escape
from importlib import resources
from typing import Any

import folium
from branca.element import Element, Figure, MacroElement
from folium.map import CustomPane, Layer
from folium.template import Template

from chiploc.common.errors import ConfigError
from chiploc.maps._basemap import BASEMAP_LAYER_NAME, basemap_geojson

__all__ = [
    "LEAFLET_VERSION",
    "MARKERCLUSTER_VERSION",
    "OfflineMap",
    "network_references",
    "render_html",
]

LEAFLET_VERSION = "1.9.4"
MARKERCLUSTER_VERSION = "1.5.3"

_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_IMAGE = re.compile(r"url\(images/([A-Za-z0-9_.-]+\.png)\)")


def _vendor_text(name: str) -> str:
    return (resources.files("chiploc.maps") / "_vendor" / name).read_text(encoding="utf-8")


def _vendor_bytes(name: str) -> bytes:
    return (resources.files("chiploc.maps") / "_vendor" / name).read_bytes()


def _inline_css_images(css: str) -> str:
    def data_uri(match: re.Match[str]) -> str:
        encoded = base64.b64encode(_vendor_bytes(match.group(1))).decode("ascii")
        return f"url(data:image/png;base64,{encoded})"

    return _CSS_IMAGE.sub(data_uri, css)


@cache
def _leaflet_assets() -> tuple[str, str]:
    js = _SOURCE_MAP.sub("", _vendor_text("leaflet.js"))
    css = _inline_css_images(_vendor_text("leaflet.css"))
    return js, css


@cache
def _markercluster_assets() -> tuple[str, str]:
    js = (
        f"/* Leaflet.markercluster {MARKERCLUSTER_VERSION} (c) 2012 David Leaver, "
        "MIT licence; vendored by chiploc, see maps/_vendor/README.md */\n"
        + _SOURCE_MAP.sub("", _vendor_text("leaflet.markercluster.js"))
    )
    css = _vendor_text("MarkerCluster.css") + "\n" + _vendor_text("MarkerCluster.Default.css")
    return js, css


def _script(code: str) -> str:
    # An inlined script must not close its own <script> element.
    return "<script>" + code.replace("</script", "<\\/script") + "</script>"


def _style(css: str) -> str:
    return "<style>" + css.replace("</style", "<\\/style") + "</style>"


class RawElement(Element):
    """Text placed in the page as it is: not a jinja template.

    branca's ``Element(text)`` compiles ``text`` as a template, which for the inlined
    Leaflet (150 kB of JavaScript) took most of a map's rendering time, and would read any
    ``{{``, ``{%`` or ``{#`` in it as template syntax."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "RawElement"
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


class OfflineMap(folium.Map):
    """A folium ``Map`` that links nothing: its scripts are inlined by :func:`render_html`."""

    def __init__(self, *, tiles: str | None = None, **kwargs: Any) -> None:
        super().__init__(
            tiles=tiles,
            attr=("tiles: " + tiles) if tiles else None,
            control_scale=True,
            zoom_start=2,
            **kwargs,
        )
        # folium's CDN links (leaflet, jquery, bootstrap, awesome-markers...): none.
        self.default_js = []
        self.default_css = []
        # Leaflet options of the map itself (folium's max_zoom/min_zoom only reach tiles).
        self.options["max_zoom"] = 19
        self.options["min_zoom"] = 1


class JsBlock(MacroElement):
    """Raw script placed after the map and its layers are created.

    ``{map}`` in ``code`` is replaced by the map's JavaScript variable name;
    ``data`` is given to the script as the JSON constant ``DATA``.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function(map, DATA) {
        {{ this.code }}
        })({{ this._parent.get_name() }}, {{ this.data_json }});
        {% endmacro %}
        """
    )

    def __init__(self, code: str, data: Any = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "JsBlock"
        self.code = code
        self.data_json = js_json(data)


class Bind(MacroElement):
    """``bindTooltip`` / ``bindPopup`` with HTML built by us (already escaped).

    folium's own ``Tooltip`` splices text into a JS template literal and its
    ``Popup`` needs jQuery; this element passes the string as JSON instead.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.{{ this.method }}(
            {{ this.html|tojson }}, {{ this.options|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, method: str, html: str, **options: Any) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if method not in ("bindTooltip", "bindPopup"):
            raise ValueError(method)
        self._name = "Bind"
        self.method = method
        self.html = html
        self.options = options


class GeoJsonLayer(Layer):
    """A static ``L.geoJSON`` layer with one style for all its features.

    Unlike ``folium.GeoJson`` it copies no per-feature style into the data and
    needs no plugin; ``tooltip`` (escaped HTML) is bound to the whole layer.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.geoJSON({{ this.data_json }}, {
            style: {{ this.style|tojson }},
            interactive: {{ this.interactive|tojson }},
            {%- if this.pane %} pane: {{ this.pane|tojson }}, {%- endif %}
        });
        {%- if this.tooltip_html %}
        {{ this.get_name() }}.bindTooltip({{ this.tooltip_html|tojson }}, {sticky: true});
        {%- endif %}
        {% endmacro %}
        """
    )

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        name: str,
        style: Mapping[str, Any],
        interactive: bool = True,
        tooltip_html: str | None = None,
        control: bool = True,
        show: bool = True,
        pane: str | None = None,
    ) -> None:
        super().__init__(name=name, overlay=True, control=control, show=show)
        self._name = "GeoJsonLayer"
        self.data_json = js_json(data)
        self.style = dict(style)
        self.interactive = interactive
        self.tooltip_html = tooltip_html
        self.pane = pane


#: The basemap's own pane: above tiles (200), below every overlay (400), marker (600),
#: tooltip (650) and popup (700). Within one pane Leaflet's CSS puts an SVG renderer above a
#: canvas one (z-index 200 vs 100), so a filled basemap sharing the overlay pane hid every
#: canvas-drawn fleet marker on land; in a pane of its own it is under them by construction.
BASEMAP_PANE = "chiplocBasemap"
BASEMAP_PANE_Z_INDEX = 250


def add_basemap(
    m: folium.Map,
    *,
    tiles: str | None,
    tolerance_deg: float = 0.05,
    view: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> GeoJsonLayer:
    """Add the country-borders layer under everything else on ``m`` (in :data:`BASEMAP_PANE`):
    filled land without ``tiles``, bare outlines over them; display only (not interactive).

    ``view`` (``((south, west), (north, east))``, where the page opens): the countries there
    are simplified to half a pixel of that view (1,280 px across) instead, so their borders
    and a zone drawn from the same data, unsimplified, are one line there.
    """
    m.add_child(CustomPane(BASEMAP_PANE, z_index=BASEMAP_PANE_Z_INDEX, pointer_events=False))
    data = basemap_geojson(tolerance_deg)
    if view is not None:
        (s, w), (n, e) = view
        extent_deg = max(e - w, n - s, 1e-3)
        data = basemap_geojson(
            tolerance_deg,
            detail_bbox=(w, s, e, n),
            detail_tolerance_deg=max(extent_deg / 2560.0, 1e-4),
        )
    layer = GeoJsonLayer(
        data,
        name=BASEMAP_LAYER_NAME,
        style={"color": "#8a8a8a", "weight": 0.8, "fillColor": "#f4f1e8", "fillOpacity": 1.0}
        if tiles is None
        else {"color": "#555", "weight": 0.8, "fill": False},
        interactive=False,
        pane=BASEMAP_PANE,
    )
    m.add_child(layer)
    return layer


def label_marker(
    location: Sequence[float],
    html: str,
    *,
    icon_size: tuple[int, int] = (120, 16),
    icon_anchor: tuple[int, int] = (-8, 8),
) -> folium.Marker:
    """A non-interactive text label (``html`` already escaped) beside ``location``."""
    return folium.Marker(
        location=list(location),
        icon=folium.DivIcon(
            html=html,
            icon_size=icon_size,
            icon_anchor=icon_anchor,
            class_name="chiploc-label-icon",
        ),
        interactive=False,
    )


def figure_of(m: folium.Map) -> Figure:
    figure = m.get_root()
    if not isinstance(figure, Figure):  # pragma: no cover - a folium Map always has one
        raise TypeError("map is not in a figure")
    return figure


def add_banner(m: folium.Map, html: str, *, colour: str) -> None:
    """A banner centred at the top of the page (``html`` already escaped)."""
    figure_of(m).html.add_child(
        RawElement(
            "<div class='chiploc-box chiploc-banner' id='chiploc-banner' "
            "style='position:absolute;top:10px;left:50%;transform:translateX(-50%);"
            f"z-index:1000;border-left-color:{colour}'>{html}</div>"
        ),
        name="banner",
    )


def attach(parent: Any, child: Any) -> None:
    """``parent.add_child(child)`` (branca's method is untyped)."""
    parent.add_child(child)


def tooltip(html: str, **options: Any) -> Bind:
    return Bind("bindTooltip", html, sticky=True, **options)


def popup(html: str) -> Bind:
    return Bind("bindPopup", html, maxWidth=420)


_CONTROL_JS = """
var Box = L.Control.extend({
  onAdd: function() {
    var div = L.DomUtil.create('div', 'chiploc-box ' + DATA.cls);
    div.innerHTML = DATA.html;
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  }
});
new Box({position: DATA.position}).addTo(map);
"""


def html_control(html: str, *, position: str, cls: str) -> JsBlock:
    """A Leaflet control (banner, legend, panel) holding ``html`` (escaped by the caller)."""
    return JsBlock(_CONTROL_JS, {"html": html, "position": position, "cls": cls})


_ZOOM_JS = """
var Zoom = L.Control.extend({
  onAdd: function() {
    var div = L.DomUtil.create('div', 'chiploc-box');
    DATA.buttons.forEach(function(b) {
      var btn = L.DomUtil.create('button', 'chiploc-btn', div);
      btn.textContent = b[0];
      btn.setAttribute('data-chiploc-zoom', b[0]);
      L.DomEvent.on(btn, 'click', function(ev) {
        L.DomEvent.stop(ev); map.fitBounds(b[1], {padding: [30, 30], maxZoom: 17});
      });
    });
    L.DomEvent.disableClickPropagation(div);
    return div;
  }
});
new Zoom({position: 'topleft'}).addTo(map);
map.fitBounds(DATA.initial, {padding: [30, 30], maxZoom: 17, animate: false});
"""


def zoom_control(buttons: Sequence[tuple[str, Any]], *, initial: Any) -> JsBlock:
    """Buttons fitting the view to ``[[s, w], [n, e]]`` bounds; the view starts at ``initial``."""
    return JsBlock(_ZOOM_JS, {"buttons": [list(b) for b in buttons], "initial": initial})


_BASE_CSS = """
.chiploc-box { background: rgba(255,255,255,0.95); padding: 6px 10px; border-radius: 5px;
  box-shadow: 0 1px 5px rgba(0,0,0,0.4); font: 13px/1.35 system-ui, sans-serif; color: #222;
  max-width: 460px; }
.chiploc-box h3 { margin: 0 0 2px 0; font-size: 15px; }
.chiploc-box table { border-collapse: collapse; }
.chiploc-box td { padding: 0 6px 0 0; vertical-align: top; }
.chiploc-swatch { display: inline-block; width: 14px; height: 10px; margin-right: 5px;
  vertical-align: middle; border: 2px solid #333; }
.chiploc-dot { display: inline-block; width: 10px; height: 10px; margin-right: 5px;
  border-radius: 50%; vertical-align: middle; border: 1px solid #222; }
.chiploc-banner { font-size: 14px; border-left: 8px solid #777; }
.chiploc-small { color: #555; font-size: 11px; }
.leaflet-container { background: #dfeaf3; }
.chiploc-label { background: none; border: none; font: bold 12px system-ui, sans-serif;
  color: #111; text-shadow: 0 0 3px #fff, 0 0 3px #fff; white-space: nowrap;
  display: inline-block; }
.chiploc-btn { display: block; margin: 2px 0; padding: 2px 6px; cursor: pointer;
  font: 12px system-ui, sans-serif; background: #fff; border: 1px solid #888;
  border-radius: 3px; width: 100%; }
"""

_READY_JS = """
window.chiploc = {map: map, layers: {}, readyMs: null, version: L.version};
for (var name in DATA.layers) { window.chiploc.layers[name] = window[DATA.layers[name]]; }
function chiplocReady() {
  if ((window.chiplocPending || 0) > 0) { setTimeout(chiplocReady, 5); return; }
  requestAnimationFrame(function() { requestAnimationFrame(function() {
    window.chiploc.readyMs = performance.now();
    document.body.setAttribute('data-chiploc-ready', '1');
  }); });
}
chiplocReady();
"""


def render_html(
    m: OfflineMap,
    *,
    title: str,
    layers: Mapping[str, MacroElement],
    cluster: bool = False,
    tiles: str | None = None,
) -> str:
    """Render ``m`` as one self-contained HTML page.

    ``layers`` names the layers tests and benchmarks may look up through
    ``window.chiploc.layers``. Raises :class:`ConfigError` if the page would
    load anything from the network other than the opted-in ``tiles`` URL.
    """
    figure = figure_of(m)
    figure.title = escape(title)
    leaflet_js, leaflet_css = _leaflet_assets()
    figure.header.add_child(RawElement(_style(leaflet_css)), name="leaflet_css", index=0)
    figure.header.add_child(RawElement(_script(leaflet_js)), name="leaflet_js", index=1)
    if cluster:
        mc_js, mc_css = _markercluster_assets()
        figure.header.add_child(RawElement(_style(mc_css)), name="markercluster_css")
        figure.header.add_child(RawElement(_script(mc_js)), name="markercluster_js")
    figure.header.add_child(RawElement(_style(_BASE_CSS)), name="chiploc_css")
    footer = (
        '<div style="display:none" id="chiploc-licences">Leaflet '
        f"{LEAFLET_VERSION} (BSD-2-Clause, (c) 2010-2023 Volodymyr Agafonkin)"
        + (f"; Leaflet.markercluster {MARKERCLUSTER_VERSION} (MIT)" if cluster else "")
        + "</div>"
    )
    figure.html.add_child(RawElement(footer), name="licences")
    m.add_child(JsBlock(_READY_JS, {"layers": {k: v.get_name() for k, v in layers.items()}}))
    page: str = figure.render()
    bad = [ref for ref in network_references(page) if tiles is None or ref != tiles]
    if bad:
        raise ConfigError(f"map would load from the network: {bad[:3]}", reason="not_offline")
    return page


# What a browser would fetch by itself: element sources, stylesheet links, CSS url(),
# @import, and Leaflet tile-layer templates (which folium emits as L.tileLayer("...")).
_LOADING_PATTERNS: Sequence[re.Pattern[str]] = (
    re.compile(
        r"""<(?:script|img|iframe|embed|source|video|audio|input)\b[^>]*?\bsrc\s*=\s*["']?([^"'\s>]+)""",
        re.I,
    ),
    re.compile(r"""<link\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)""", re.I),
    re.compile(r"""(?<![\w$.])url\(\s*["']?([^"')\s]+)""", re.I),
    re.compile(r"""@import\s+["']([^"']+)""", re.I),
    re.compile(r"""L\.tileLayer(?:\.wms)?\(\s*["']([^"']+)""", re.I),
    re.compile(r"""\bfetch\(\s*["']([^"']+)""", re.I),
)
_SAFE_SCHEMES = ("data:", "#")


def network_references(page: str) -> list[str]:
    """Every URL in ``page`` that a browser would load by itself (not ``data:`` or ``#``).

    Relative URLs count too: from a ``file://`` page they would be missing files.
    """
    found: list[str] = []
    for pattern in _LOADING_PATTERNS:
        for match in pattern.finditer(page):
            url = match.group(1)
            if not url.startswith(_SAFE_SCHEMES):
                found.append(url)
    return found


def js_json(value: Any) -> str:
    """Compact JSON that is safe inside a ``<script>`` element (no ``<``, ``>``, ``&``, ``'``)."""
    return (
        json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
