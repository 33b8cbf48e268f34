"""The landmark's HTTP control plane described as OpenAPI 3.1, served at ``GET /openapi.json``.

Invariants: one entry in :data:`PATHS` per route the daemon registers (method and path),
checked by ``tests/landmarks/test_openapi.py`` against the real aiohttp router, so a new
route without its description fails the suite. To add a route: register it in
``LandmarkDaemon.start`` and add its operation to :data:`PATHS` (schemas that several
routes share go in :data:`SCHEMAS`). Timed exchange never goes through HTTP: these routes
only start rounds (whose probes are UDP) and hand out signed reports.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PATHS", "SCHEMAS", "openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "reason"],
        "properties": {
            "error": {"type": "string", "description": "one-line diagnosis"},
            "reason": {
                "type": "string",
                "description": "machine-readable cause, e.g. bad_json, bad_cursor, "
                "unknown_identity, revoked, timeout, draining",
            },
        },
    },
    "Target": {
        "type": "object",
        "required": ["chip_id", "address"],
        "properties": {
            "chip_id": {"type": "string", "description": "an enrolled, unrevoked chip id"},
            "address": {"type": "string", "description": "the chip agent's UDP HOST:PORT"},
            "probes": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10000,
                "description": "timed probes in the burst (default: probes_per_round)",
            },
        },
    },
    "Report": {
        "type": "object",
        "description": "A signed measurement report: the signed bytes (report_b64, verify "
        "these) and an informational JSON view of them.",
        "required": ["chip_id", "report", "report_b64"],
        "properties": {
            "chip_id": {"type": "string"},
            "report_b64": {"type": "string", "contentEncoding": "base64"},
            "report": {"$ref": "#/components/schemas/ReportView"},
        },
    },
    "ReportView": {
        "type": "object",
        "properties": {
            "landmark_id": {"type": "string"},
            "chip_id": {"type": "string"},
            "session_id": {"type": "string", "description": "hex"},
            "chip_address": {"type": "string"},
            "started_at_unix_ns": {"type": "integer"},
            "finished_at_unix_ns": {"type": "integer"},
            "timestamp_source": {"type": "string", "enum": ["kernel", "user", "mixed", "none"]},
            "min_rtt_ns": {"type": ["integer", "null"], "description": "null: no answer"},
            "overhead_lower_bound_ns": {"type": "integer"},
            "probes_sent": {"type": "integer"},
            "probes_answered": {"type": "integer"},
            "probes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "seq": {"type": "integer"},
                        "nonce": {"type": "string", "description": "hex"},
                        "rtt_ns": {"type": ["integer", "null"]},
                        "timestamp_source": {"type": "string"},
                        "chip_signature": {"type": ["string", "null"], "description": "hex"},
                    },
                },
            },
            "digest": {"type": "string", "description": "hex SHA-256 of the signed bytes"},
            "batch": {
                "type": ["object", "null"],
                "description": "null: signed on its own; else its place in the landmark's "
                "signed batch (docs/protocol.md, batch signatures)",
                "properties": {
                    "index": {"type": "integer"},
                    "size": {"type": "integer"},
                    "root": {"type": "string", "description": "hex"},
                },
            },
            "report_b64": {"type": "string", "contentEncoding": "base64"},
        },
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/healthz": {
        "get": {
            "summary": "Liveness and the UDP address probes come from.",
            "responses": {
                "200": _json(
                    "running",
                    {
                        "type": "object",
                        "properties": {
                            "status": {"const": "ok"},
                            "landmark": {"type": "string"},
                            "udp": {
                                "type": "array",
                                "prefixItems": [{"type": "string"}, {"type": "integer"}],
                            },
                        },
                    },
                ),
                "503": _json(
                    "draining (shutting down): same body with status draining",
                    {"type": "object", "properties": {"status": {"const": "draining"}}},
                ),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus text exposition: probes, rounds, rejections by reason.",
            "responses": {
                "200": {
                    "description": "counters and gauges (see docs/operations.md)",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/v1/rounds": {
        "post": {
            "summary": "Measure one chip now (one target), or many at once (targets).",
            "description": "The probes go over UDP; the landmark times them on its own clock, "
            "stores the signed report durably, then answers. One target: the report or an "
            "error status. Many: 200 with one result per target, each a report or an error "
            "object (the batch never fails as a whole once parsed).",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Target"},
                                {
                                    "type": "object",
                                    "required": ["targets"],
                                    "properties": {
                                        "targets": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": 100000,
                                            "items": {"$ref": "#/components/schemas/Target"},
                                        },
                                        "probes": {
                                            "type": "integer",
                                            "minimum": 1,
                                            "maximum": 10000,
                                            "description": "default for every target",
                                        },
                                    },
                                },
                            ]
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    "one target: its report; targets: {results: [report or "
                    "{chip_id, error, reason}]}",
                    {
                        "oneOf": [
                            {"$ref": "#/components/schemas/Report"},
                            {
                                "type": "object",
                                "properties": {
                                    "results": {
                                        "type": "array",
                                        "items": {
                                            "oneOf": [
                                                {"$ref": "#/components/schemas/Report"},
                                                {
                                                    "type": "object",
                                                    "required": ["chip_id", "error", "reason"],
                                                    "properties": {
                                                        "chip_id": {"type": "string"},
                                                        "error": {"type": "string"},
                                                        "reason": {"type": "string"},
                                                    },
                                                },
                                            ]
                                        },
                                    }
                                },
                            },
                        ]
                    },
                ),
                "400": _error("body not JSON (bad_json) or a malformed target"),
                "404": _error("chip unknown to the registry or revoked"),
                "502": _error("the round failed otherwise (e.g. the chip's answers rejected)"),
                "503": _error("the landmark is shutting down (draining)"),
                "504": _error("no answer from the chip within hello/probe timeouts"),
            },
        }
    },
    "/v1/reports": {
        "get": {
            "summary": "Stored signed reports after a cursor, oldest first.",
            "parameters": [
                {
                    "name": "since",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 0, "default": 0},
                    "description": "return reports with cursor > since",
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                },
            ],
            "responses": {
                "200": _json(
                    "a page; pass next as since for the following one",
                    {
                        "type": "object",
                        "properties": {
                            "reports": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "cursor": {"type": "integer"},
                                        "report_b64": {"type": "string"},
                                        "report": {"$ref": "#/components/schemas/ReportView"},
                                    },
                                },
                            },
                            "next": {"type": "integer"},
                        },
                    },
                ),
                "400": _error("since or limit not an integer or out of range (bad_cursor)"),
                "503": _error("the landmark is not running (draining)"),
            },
        }
    },
    "/v1/mesh/rounds": {
        "post": {
            "summary": "Measure mesh peers now (the landmark mesh, docs/mesh.md).",
            "description": "One mesh pass on request: this landmark runs a timed round (UDP, "
            "PEER role) against each configured mesh peer, or the subset named in peers; each "
            "signed PEER_REPORT is stored and served by /v1/reports like a chip report. The "
            "body is optional.",
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "peers": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "description": "configured mesh peer ids (default: all)",
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    "per peer, its signed report (chip_id is the peer) or {peer, error, reason}",
                    {
                        "type": "object",
                        "properties": {
                            "results": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["peer"],
                                    "properties": {
                                        "peer": {"type": "string"},
                                        "chip_id": {"type": "string"},
                                        "report_b64": {"type": "string"},
                                        "report": {"$ref": "#/components/schemas/ReportView"},
                                        "error": {"type": "string"},
                                        "reason": {"type": "string"},
                                    },
                                },
                            }
                        },
                    },
                ),
                "400": _error(
                    "body not JSON (bad_json), peers not configured mesh peers (bad_peer), or "
                    "no mesh peers configured (no_peers)"
                ),
                "503": _error("the landmark is shutting down (draining)"),
            },
        }
    },
    "/v1/mesh": {
        "get": {
            "summary": "This landmark's minimum RTT to each mesh peer and its vacuum check.",
            "description": "A landmark sees only its own links: a violation flags the pair "
            "(the RTT beats light between the registered sites), never a suspect; the "
            "verifier applies the suspect rule over every pair (docs/mesh.md).",
            "responses": {
                "200": _json(
                    "the links measured since start",
                    {
                        "type": "object",
                        "properties": {
                            "landmark": {"type": "string"},
                            "peers": {"type": "array", "items": {"type": "string"}},
                            "links": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "landmark": {"type": "string"},
                                        "peer": {"type": "string"},
                                        "rtt_ms": {"type": "number"},
                                        "registered_km": {"type": "number"},
                                        "vacuum_bound_km": {"type": ["number", "null"]},
                                        "violation": {"type": "boolean"},
                                    },
                                },
                            },
                        },
                    },
                )
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document.",
            "responses": {"200": _json("OpenAPI 3.1", {"type": "object"})},
        }
    },
}


def openapi_document(*, landmark_id: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the landmark's HTTP control plane."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chiploc landmark control plane",
            "version": "1",
            "description": "Start timed rounds (UDP) and fetch signed reports. "
            + (f"Landmark {landmark_id}." if landmark_id else ""),
        },
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }
