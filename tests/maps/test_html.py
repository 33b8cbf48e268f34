"""The offline HTML machinery: what would load from the network is found, and nothing does."""

from __future__ import annotations

import pytest

from chiploc.common.errors import ConfigError
from chiploc.maps import LEAFLET_VERSION, network_references
from chiploc.maps._html import (
    OfflineMap,
    _leaflet_assets,
    _markercluster_assets,
    js_json,
    render_html,
)


@pytest.mark.parametrize(
    ("snippet", "found"),
    [
        (
            '<script src="https://cdn.example/leaflet.js"></script>',
            "https://cdn.example/leaflet.js",
        ),
        ("<script src='//cdn.example/x.js'></script>", "//cdn.example/x.js"),
        ('<link rel="stylesheet" href="http://cdn.example/a.css"/>', "http://cdn.example/a.css"),
        ("<img src=images/marker-icon.png>", "images/marker-icon.png"),
        (".x { background: url(images/layers.png) }", "images/layers.png"),
        (".x { background: URL('https://e.example/a.png') }", "https://e.example/a.png"),
        ('@import "https://e.example/b.css";', "https://e.example/b.css"),
        (
            'L.tileLayer("https://{s}.tile.example/{z}/{x}/{y}.png", {})',
            "https://{s}.tile.example/{z}/{x}/{y}.png",
        ),
        ('fetch("https://api.example/q")', "https://api.example/q"),
    ],
)
def test_loading_references_are_found(snippet: str, found: str) -> None:
    assert network_references(snippet) == [found]


@pytest.mark.parametrize(
    "snippet",
    [
        ".x { background: url(data:image/png;base64,AAAA) }",
        ".lvml { behavior: url(#default#VML) }",
        '<a href="https://leafletjs.com">Leaflet</a>',  # a link loads nothing by itself
        "var u = this.getTileUrl(t); i._getIconUrl(e)",
        'xmlns="http://www.w3.org/2000/svg"',
    ],
)
def test_non_loading_text_is_not_flagged(snippet: str) -> None:
    assert network_references(snippet) == []


def test_vendored_assets_load_nothing() -> None:
    for code in (*_leaflet_assets(), *_markercluster_assets()):
        assert network_references(code) == []
        assert "sourceMappingURL" not in code
    js, css = _leaflet_assets()
    assert f'version="{LEAFLET_VERSION}"' in js
    assert "url(data:image/png;base64," in css


def test_folium_cdn_defaults_are_gone() -> None:
    page = render_html(OfflineMap(), title="t", layers={})
    assert network_references(page) == []
    for cdn in ("cdn.jsdelivr.net", "code.jquery.com", "bootstrap", "awesome-markers", "cdnjs"):
        assert cdn not in page
    assert page.count("<script>") >= 2  # Leaflet and the map, inline


def test_tiles_only_when_asked_and_nothing_else() -> None:
    url = "https://tiles.example/{z}/{x}/{y}.png"
    page = render_html(OfflineMap(tiles=url), title="t", layers={}, tiles=url)
    assert network_references(page) == [url]
    with pytest.raises(ConfigError, match="network"):
        render_html(OfflineMap(tiles=url), title="t", layers={})


def test_js_json_cannot_close_the_script() -> None:
    text = js_json({"id": "</script><script>alert(1)</script>", "q": "it's & <b>"})
    for char in "<>'&":
        assert char not in text
