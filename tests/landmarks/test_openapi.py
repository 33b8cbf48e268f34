"""The landmark's OpenAPI document: valid OpenAPI 3.1, served at /openapi.json, and exactly the
routes the running daemon's aiohttp router serves (a route added without its description, or
a description left for a route removed, fails here)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from openapi_spec_validator import validate

from chiploc.landmarks import LandmarkDaemon
from chiploc.protocol import PrivateKey, Registry

from .test_daemon import config


async def test_openapi_document_matches_the_real_routes(
    tmp_path: Path, landmark_key: PrivateKey, registry: Registry
) -> None:
    async with LandmarkDaemon(config(tmp_path), key=landmark_key, registry=registry) as d:
        async with aiohttp.ClientSession() as http, http.get(f"{d.http_url}/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
        served = set(d.http_routes)
    validate(doc)
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
    assert ("GET", "/openapi.json") in served
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method} {path}: no summary"
            assert "200" in op["responses"], f"{method} {path}: no success response"
