"""Certificates: issue, verify, and one test per attack (tampering, expiry, wrong keys)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc.common.errors import (
    BadSignature,
    DecodeError,
    LocalProtocolError,
    RevokedIdentity,
    StaleMessage,
    Superseded,
    UnknownIdentity,
    VerificationError,
)
from chiploc.protocol import PrivateKey, Registry, Role, generate_private_key
from chiploc.store import canonical_json, sha256_hex
from chiploc.verifier import (
    CERTIFICATE_DOMAIN,
    DEFAULT_VALIDITY_S,
    MAX_CERTIFICATE_BYTES,
    Certificate,
    SignedCertificate,
    issue_certificate,
    region_digest_hex,
    verify_certificate,
)

from .conftest import AUTH_REGION_DIGEST, EVIDENCE, NOW_S, result_dict


def _issue(key: PrivateKey, result: dict[str, Any] | None = None, **kw: Any) -> bytes:
    args: dict[str, Any] = {
        "authorized_region_digest_hex": AUTH_REGION_DIGEST,
        "evidence_digests": list(EVIDENCE),
        "signer": key,
        "issued_at_unix_s": NOW_S,
    }
    args.update(kw)
    return issue_certificate(result or result_dict(), **args)


def _resign(key: PrivateKey, cert: dict[str, Any]) -> bytes:
    """An attacker with `key` re-signing an edited certificate body."""
    sig = key.sign(CERTIFICATE_DOMAIN + canonical_json(cert))
    return canonical_json({"certificate": cert, "signature": sig.hex()})


def test_issue_and_verify_round_trip(verifier_key: PrivateKey, registry: Registry) -> None:
    data = _issue(verifier_key)
    cert = verify_certificate(data, registry, now_unix_s=NOW_S + 60)
    assert cert.chip_id == "chip-1"
    assert cert.verdict == "COMPLIANT"
    assert cert.proof is True
    assert cert.model == "vacuum"
    assert cert.authorized_region_spec == "country:DEU"
    assert cert.authorized_region_digest_hex == AUTH_REGION_DIGEST
    assert cert.region_digest_hex == region_digest_hex(result_dict()["region"])
    assert cert.margin_km == 12.3
    assert cert.evidence == tuple(sorted(EVIDENCE))
    assert cert.expires_at_unix_s == NOW_S + DEFAULT_VALIDITY_S
    assert cert.verifier_id == "verifier-1"
    assert "COMPLIANT" in cert.summary()
    # The file is canonical JSON, and a trailing newline is tolerated.
    assert data == canonical_json(json.loads(data))
    verify_certificate(data + b"\n", registry, now_unix_s=NOW_S)


def test_certificate_is_deterministic_and_named_by_digest(verifier_key: PrivateKey) -> None:
    a, b = _issue(verifier_key), _issue(verifier_key)
    assert a == b  # Ed25519 is deterministic
    assert SignedCertificate.from_bytes(a).digest_hex == sha256_hex(a)


def test_region_digest_is_of_canonical_geojson() -> None:
    region = {"coordinates": [[[1.0, 2.0]]], "type": "Polygon"}
    reordered = {"type": "Polygon", "coordinates": [[[1.0, 2.0]]]}
    assert region_digest_hex(region) == region_digest_hex(reordered)
    assert region_digest_hex(region) == sha256_hex(
        b'{"coordinates":[[[1.0,2.0]]],"type":"Polygon"}'
    )


def test_accepts_an_object_with_to_json_dict(verifier_key: PrivateKey, registry: Registry) -> None:
    class FakeSolveResult:
        def to_json_dict(self) -> dict[str, Any]:
            return result_dict("VIOLATION", margin_km=-40.0)

    data = issue_certificate(
        FakeSolveResult(),
        authorized_region_digest_hex=AUTH_REGION_DIGEST,
        evidence_digests=EVIDENCE,
        signer=verifier_key,
        issued_at_unix_s=NOW_S,
    )
    assert verify_certificate(data, registry, now_unix_s=NOW_S).verdict == "VIOLATION"


def test_unreachable_without_region_or_evidence(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    result = result_dict("UNREACHABLE", region=None, margin_km=None, region_center=None)
    data = _issue(verifier_key, result, evidence_digests=[])
    cert = verify_certificate(data, registry, now_unix_s=NOW_S)
    assert cert.region_digest_hex is None
    assert cert.evidence == ()


@pytest.mark.parametrize(
    ("result", "kw"),
    [
        (result_dict(model="fiber"), {}),  # proof with a weaker model
        (result_dict(verdict="MAYBE"), {}),
        (result_dict(region=None), {}),  # COMPLIANT needs a region
        (result_dict(), {"evidence_digests": []}),  # COMPLIANT needs evidence
        (result_dict(), {"evidence_digests": ["XYZ"]}),
        (result_dict(), {"authorized_region_digest_hex": "short"}),
        (result_dict(margin_km=float("nan")), {}),
        (result_dict(), {"validity_s": 0}),
        ({"target": "chip-1"}, {}),
    ],
)
def test_issue_refuses_inconsistent_input(
    verifier_key: PrivateKey, result: dict[str, Any], kw: dict[str, Any]
) -> None:
    with pytest.raises(LocalProtocolError):
        _issue(verifier_key, result, **kw)


def test_expired_and_not_yet_valid(verifier_key: PrivateKey, registry: Registry) -> None:
    data = _issue(verifier_key, validity_s=3600)
    verify_certificate(data, registry, now_unix_s=NOW_S + 3599)
    with pytest.raises(StaleMessage) as info:
        verify_certificate(data, registry, now_unix_s=NOW_S + 3600)
    assert info.value.reason == "expired"
    with pytest.raises(StaleMessage) as info:
        verify_certificate(data, registry, now_unix_s=NOW_S - 1)
    assert info.value.reason == "not_yet_valid"
    verify_certificate(data, registry, now_unix_s=NOW_S - 5, leeway_s=5)


def test_unenrolled_signer_is_unknown(registry: Registry) -> None:
    stranger = generate_private_key(Role.VERIFIER, "verifier-9", seed=b"\x09" * 32)
    with pytest.raises(UnknownIdentity):
        verify_certificate(_issue(stranger), registry, now_unix_s=NOW_S)


def test_revoked_signer_is_refused(other_verifier_key: PrivateKey, registry: Registry) -> None:
    with pytest.raises(RevokedIdentity):
        verify_certificate(_issue(other_verifier_key), registry, now_unix_s=NOW_S)


def test_wrong_key_under_an_enrolled_id_is_bad_signature(registry: Registry) -> None:
    impostor = generate_private_key(Role.VERIFIER, "verifier-1", seed=b"\x07" * 32)
    with pytest.raises(BadSignature):
        verify_certificate(_issue(impostor), registry, now_unix_s=NOW_S)


def test_claiming_another_verifier_id_is_bad_signature(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    cert = json.loads(_issue(verifier_key))["certificate"]
    cert["verifier_id"] = "verifier-2x"
    body = json.loads(_issue(verifier_key))
    body["certificate"] = cert
    with pytest.raises(UnknownIdentity):
        verify_certificate(canonical_json(body), registry, now_unix_s=NOW_S)


def test_signature_from_another_domain_does_not_verify(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    cert = json.loads(_issue(verifier_key))["certificate"]
    sig = verifier_key.sign(canonical_json(cert))  # no domain separator
    data = canonical_json({"certificate": cert, "signature": sig.hex()})
    with pytest.raises(BadSignature):
        verify_certificate(data, registry, now_unix_s=NOW_S)


_EDITS: list[tuple[str, Any]] = [
    ("chip_id", "chip-2"),
    ("verdict", "VIOLATION"),
    ("proof", False),
    ("region_digest", "ee" * 32),
    ("margin_km", 500.0),
    ("evidence", sorted(EVIDENCE[:2])),
    ("issued_at", NOW_S - 1),
    ("expires_at", NOW_S + 10 * DEFAULT_VALIDITY_S),
    ("authorized_region", {"spec": "country:FRA", "digest": AUTH_REGION_DIGEST}),
    ("authorized_region", {"spec": "country:DEU", "digest": "ae" * 32}),
]


@pytest.mark.parametrize(("field", "value"), _EDITS, ids=[f"{f}={v!r}"[:40] for f, v in _EDITS])
def test_every_field_edit_breaks_the_signature(
    verifier_key: PrivateKey, registry: Registry, field: str, value: Any
) -> None:
    body = json.loads(_issue(verifier_key))
    body["certificate"][field] = value
    with pytest.raises(BadSignature):
        verify_certificate(canonical_json(body), registry, now_unix_s=NOW_S)


def test_edited_model_breaks_the_signature(verifier_key: PrivateKey, registry: Registry) -> None:
    body = json.loads(_issue(verifier_key, result_dict(model="calibrated", proof=False)))
    body["certificate"]["model"] = "fiber"
    with pytest.raises(BadSignature):
        verify_certificate(canonical_json(body), registry, now_unix_s=NOW_S)


def test_edited_signature_is_bad_signature(verifier_key: PrivateKey, registry: Registry) -> None:
    body = json.loads(_issue(verifier_key))
    sig = bytearray(bytes.fromhex(body["signature"]))
    sig[0] ^= 1
    body["signature"] = sig.hex()
    with pytest.raises(BadSignature):
        verify_certificate(canonical_json(body), registry, now_unix_s=NOW_S)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.replace(b'{"certificate"', b'{ "certificate"'),  # not canonical
        lambda d: d.replace(b'"signature":"', b'"signature":"' + b"A"),
        lambda d: d[:-2],
        lambda d: b"",
        lambda d: b"\xff" + d,
        lambda d: d.replace(b'"verdict":"COMPLIANT"', b'"verdict":"COMPLIANT","verdict":"X"'),
        lambda d: d.replace(b'"margin_km":12.3', b'"margin_km":NaN'),
        lambda d: d.replace(b'"format":"chiploc-certificate/1"', b'"format":"v2"'),
        lambda d: d.replace(b'"proof":true', b'"proof":1'),
        lambda d: d.replace(b'{"certificate":', b'{"extra":1,"certificate":'),
        lambda d: b"[]",
        lambda d: b" " * (2 << 20),
    ],
)
def test_malformed_files_are_decode_errors(
    verifier_key: PrivateKey, registry: Registry, mangle: Any
) -> None:
    data = _issue(verifier_key)
    with pytest.raises(DecodeError):
        verify_certificate(mangle(data), registry, now_unix_s=NOW_S)


def test_resigned_proof_with_weaker_model_is_malformed(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    cert = json.loads(_issue(verifier_key))["certificate"]
    cert["model"] = "fiber"
    with pytest.raises(DecodeError, match="only the vacuum model"):
        verify_certificate(_resign(verifier_key, cert), registry, now_unix_s=NOW_S)


@given(position=st.integers(min_value=0), delta=st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_never_verifies(position: int, delta: int) -> None:
    key = generate_private_key(Role.VERIFIER, "verifier-1", seed=b"\x01" * 32)
    from chiploc.protocol import VerifierEntry, index_by_id

    registry = Registry(
        authority_public_key=b"\x05" * 32,
        verifiers=index_by_id(
            [VerifierEntry(id="verifier-1", public_key=key.public_key.key_bytes)]
        ),
    )
    data = bytearray(_issue(key))
    i = position % len(data)
    data[i] = (data[i] + delta) % 256
    with pytest.raises((VerificationError, DecodeError)):
        verify_certificate(bytes(data), registry, now_unix_s=NOW_S)


def test_signed_certificate_round_trip(verifier_key: PrivateKey) -> None:
    data = _issue(verifier_key)
    signed = SignedCertificate.from_bytes(data)
    assert signed.to_bytes() == data
    assert Certificate.from_json_dict(signed.certificate.to_json_dict()) == signed.certificate


# --------------------------------------------------------------------------- withdrawal


def test_certificate_of_a_revoked_chip_no_longer_verifies(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    data = _issue(verifier_key, result_dict(target="chip-2"))
    with pytest.raises(RevokedIdentity) as info:
        verify_certificate(data, registry, now_unix_s=NOW_S + 60)
    assert info.value.reason == "chip_revoked"
    assert "chip-2" in str(info.value)


def test_certificate_of_a_chip_whose_region_changed_no_longer_verifies(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    # chip-3 was judged against country:DEU; the registry now authorizes it for FRA.
    data = _issue(verifier_key, result_dict(target="chip-3"))
    with pytest.raises(Superseded) as info:
        verify_certificate(data, registry, now_unix_s=NOW_S + 60)
    assert info.value.reason == "region_changed"
    assert "country:FRA" in str(info.value)
    # Same spec, but the zone's geometry changed (a GeoJSON file edited): superseded too.
    ok = _issue(verifier_key)
    assert (
        verify_certificate(
            ok, registry, now_unix_s=NOW_S + 60, region_digest_hex=AUTH_REGION_DIGEST
        ).chip_id
        == "chip-1"
    )
    with pytest.raises(Superseded, match="changed"):
        verify_certificate(ok, registry, now_unix_s=NOW_S + 60, region_digest_hex="ae" * 32)


def test_certificate_of_an_unenrolled_chip_does_not_verify(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    data = _issue(verifier_key, result_dict(target="chip-9"))
    with pytest.raises(UnknownIdentity) as info:
        verify_certificate(data, registry, now_unix_s=NOW_S + 60)
    assert info.value.reason == "unknown_chip"


def test_revoked_verifier_reason_is_distinct(
    other_verifier_key: PrivateKey, registry: Registry
) -> None:
    with pytest.raises(RevokedIdentity) as info:
        verify_certificate(_issue(other_verifier_key), registry, now_unix_s=NOW_S + 60)
    assert info.value.reason == "verifier_revoked"


def test_a_forged_certificate_for_a_revoked_chip_is_a_bad_signature_first(
    registry: Registry,
) -> None:
    # The signature is checked before the chip: a forger learns nothing about chip state.
    forger = generate_private_key(Role.VERIFIER, "verifier-1", seed=b"\x66" * 32)
    with pytest.raises(BadSignature):
        verify_certificate(
            _issue(forger, result_dict(target="chip-2")), registry, now_unix_s=NOW_S + 60
        )


def test_leeway_extends_validity_by_exactly_its_length_both_ways(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    data = _issue(verifier_key, validity_s=3600)
    verify_certificate(data, registry, now_unix_s=NOW_S + 3600 + 9, leeway_s=10)
    with pytest.raises(StaleMessage, match="expired at"):
        verify_certificate(data, registry, now_unix_s=NOW_S + 3600 + 10, leeway_s=10)
    verify_certificate(data, registry, now_unix_s=NOW_S - 10, leeway_s=10)
    with pytest.raises(StaleMessage, match="not valid before"):
        verify_certificate(data, registry, now_unix_s=NOW_S - 11, leeway_s=10)
    # The leeway never turns a valid certificate into an expired one.
    verify_certificate(data, registry, now_unix_s=NOW_S + 3599, leeway_s=3600)


def test_refusals_say_who_and_why(
    verifier_key: PrivateKey, other_verifier_key: PrivateKey, registry: Registry
) -> None:
    # What a person reads: the identity and the reason, not a bare error.
    cases: list[tuple[bytes, str]] = [
        (_issue(other_verifier_key), "verifier 'verifier-2' is revoked"),
        (_issue(verifier_key, result_dict(target="chip-2")), "chip 'chip-2' is revoked"),
        (_issue(verifier_key, result_dict(target="chip-9")), "chip 'chip-9' is not enrolled"),
        (
            _issue(generate_private_key(Role.VERIFIER, "verifier-1", seed=b"\x07" * 32)),
            "does not verify under verifier 'verifier-1'",
        ),
    ]
    for data, words in cases:
        with pytest.raises(VerificationError) as info:
            verify_certificate(data, registry, now_unix_s=NOW_S + 1)
        assert words in str(info.value)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda c: c.pop("margin_km"), "missing ['margin_km']"),
        (lambda c: c.update(extra=1), "unexpected ['extra']"),
        (lambda c: c.update(authorized_region="country:DEU"), "authorized_region must be"),
        (lambda c: c.update(authorized_region={"spec": "x"}), "authorized_region must be"),
        (lambda c: c.update(evidence="11" * 32), "evidence must be a list"),
        (lambda c: c.update(verdict="MAYBE"), "unknown verdict"),
        (lambda c: c.update(model="guess"), "unknown model"),
        (lambda c: c.update(evidence=[]), "needs evidence"),
        (lambda c: c.update(region_digest=None), "needs a region digest"),
        (lambda c: c.update(expires_at=NOW_S), "expires_at must be after"),
        (lambda c: c.update(margin_km=True), "margin_km must be"),
        (lambda c: c.update(chip_id=""), "chip_id must be"),
        (lambda c: c.update(evidence=["22" * 32, "11" * 32]), "sorted and unique"),
        (lambda c: c.update(issued_at=-1), "issued_at must be"),
    ],
)
def test_malformed_certificate_bodies_name_the_field(
    verifier_key: PrivateKey, registry: Registry, edit: Any, words: str
) -> None:
    cert = json.loads(_issue(verifier_key))["certificate"]
    edit(cert)
    with pytest.raises(DecodeError) as info:
        verify_certificate(_resign(verifier_key, cert), registry, now_unix_s=NOW_S + 1)
    assert words in str(info.value)
    with pytest.raises(ValueError, match="JSON object"):
        Certificate.from_json_dict([cert])


@pytest.mark.parametrize(
    ("overrides", "words", "absent"),
    [
        ({}, ["chip chip-1: COMPLIANT for country:DEU", "(vacuum, proof, margin 12.3 km)",
              "3 evidence reports", f"valid {NOW_S}..{NOW_S + 3600}",
              "signed by verifier verifier-1"], []),
        ({"model": "fiber", "proof": False, "margin_km": None},
         ["(fiber, estimate)"], ["margin", "proof"]),
    ],
)  # fmt: skip
def test_summary_says_what_was_decided(
    verifier_key: PrivateKey, overrides: dict[str, Any], words: list[str], absent: list[str]
) -> None:
    data = _issue(verifier_key, result_dict(**overrides), validity_s=3600)
    line = SignedCertificate.from_bytes(data).certificate.summary()
    for w in words:
        assert w in line
    for w in absent:
        assert w not in line


@pytest.mark.parametrize(
    ("mangle", "words", "reason"),
    [
        (lambda d: "text", "certificate must be bytes", "malformed"),
        (lambda d: b" " * (MAX_CERTIFICATE_BYTES + 1), f"larger than {MAX_CERTIFICATE_BYTES}",
         "oversized"),
        (lambda d: b"\xff" + d, "certificate is not valid UTF-8", "bad_utf8"),
        (lambda d: b"[]", "certificate file must be {certificate, signature}", "malformed"),
        (lambda d: d.replace(b'{"certificate"', b'{ "certificate"'),
         "certificate is not in canonical form (edited?)", "not_canonical"),
        (lambda d: d.replace(b'"signature":"', b'"signature":"A'),
         "signature must be 128 lowercase hex digits", "malformed"),
        (lambda d: d.replace(b'"verdict":"COMPLIANT"', b'"verdict":"MAYBE"'),
         "malformed certificate: unknown verdict", "malformed"),
    ],
)  # fmt: skip
def test_a_broken_file_says_what_is_wrong(
    verifier_key: PrivateKey, mangle: Any, words: str, reason: str
) -> None:
    with pytest.raises(DecodeError) as info:
        SignedCertificate.from_bytes(mangle(_issue(verifier_key)))
    assert words in str(info.value)
    assert info.value.reason == reason


def test_size_limit_is_inclusive(verifier_key: PrivateKey) -> None:
    data = _issue(verifier_key)
    padded = data + b"\n"
    # Exactly at the limit the size check passes (the file is then judged on its content).
    at_limit = padded + b" " * (MAX_CERTIFICATE_BYTES - len(padded))
    with pytest.raises(DecodeError) as info:
        SignedCertificate.from_bytes(at_limit)
    assert info.value.reason != "oversized"


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("chip_id", "c" * 1024, True),
        ("chip_id", "c" * 1025, False),
        ("chip_id", "chip\n1", False),
        ("verifier_id", "v" * 1025, False),
        ("issued_at_unix_s", 0, True),
        ("issued_at_unix_s", -1, False),
        ("issued_at_unix_s", True, False),
        ("expires_at_unix_s", 2**53 - 1, True),
        ("expires_at_unix_s", 2**53, False),
        ("issued_at_unix_s", 1.5, False),
    ],
)
def test_field_ranges_are_exact(field: str, value: Any, ok: bool) -> None:
    base: dict[str, Any] = {
        "chip_id": "chip-1",
        "authorized_region_spec": "country:DEU",
        "authorized_region_digest_hex": AUTH_REGION_DIGEST,
        "verdict": "COMPLIANT",
        "model": "vacuum",
        "proof": True,
        "region_digest_hex": "ab" * 32,
        "margin_km": 1.0,
        "evidence": EVIDENCE,
        "issued_at_unix_s": 0,
        "expires_at_unix_s": 10,
        "verifier_id": "verifier-1",
    }
    base[field] = value
    if ok:
        Certificate(**base)
    else:
        with pytest.raises(ValueError, match=field.removesuffix("_unix_s")):
            Certificate(**base)


def test_signature_must_be_64_bytes(verifier_key: PrivateKey) -> None:
    cert = SignedCertificate.from_bytes(_issue(verifier_key)).certificate
    for bad in (bytes(63), "00" * 64, bytearray(64)):
        with pytest.raises(ValueError, match="signature must be 64 bytes"):
            SignedCertificate(certificate=cert, signature=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="region digest must be 64 lowercase hex digits"):
        Certificate.from_json_dict({**cert.to_json_dict(), "region_digest": "AB" * 32})


@pytest.mark.parametrize("verdict", ["COMPLIANT", "VIOLATION", "INCONCLUSIVE"])
def test_a_verdict_about_a_region_needs_its_digest(verdict: str) -> None:
    # A certificate that says where the chip is must pin the region it proved.
    with pytest.raises(ValueError, match=f"a {verdict} certificate needs a region digest"):
        Certificate(
            chip_id="chip-1", authorized_region_spec="country:DEU",
            authorized_region_digest_hex=AUTH_REGION_DIGEST, verdict=verdict, model="vacuum",
            proof=True, region_digest_hex=None, margin_km=None, evidence=EVIDENCE,
            issued_at_unix_s=0, expires_at_unix_s=10, verifier_id="verifier-1",
        )  # fmt: skip


@pytest.mark.parametrize(("validity", "ok"), [(1, True), (0, False), (-5, False), (2.5, False)])
def test_validity_must_be_a_positive_whole_number_of_seconds(
    verifier_key: PrivateKey, validity: Any, ok: bool
) -> None:
    if ok:
        cert = SignedCertificate.from_bytes(_issue(verifier_key, validity_s=validity))
        assert cert.certificate.expires_at_unix_s == NOW_S + validity
        return
    with pytest.raises(LocalProtocolError) as info:
        _issue(verifier_key, validity_s=validity)
    assert info.value.reason == "bad_certificate"
    assert str(info.value) == "validity_s must be a positive integer"


def _fields(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "chip_id": "chip-1", "authorized_region_spec": "country:DEU",
        "authorized_region_digest_hex": AUTH_REGION_DIGEST, "verdict": "COMPLIANT",
        "model": "vacuum", "proof": True, "region_digest_hex": "ab" * 32, "margin_km": 1.0,
        "evidence": EVIDENCE, "issued_at_unix_s": 0, "expires_at_unix_s": 10,
        "verifier_id": "verifier-1",
    }  # fmt: skip
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"format": "v9"}, "unsupported certificate format 'v9'"),
        ({"authorized_region_spec": ""},
         "authorized region spec must be a non-empty printable string"),
        ({"authorized_region_digest_hex": "x"},
         "authorized region digest must be 64 lowercase hex digits"),
        ({"proof": 1}, "proof must be a boolean"),
        ({"model": "fiber"}, "only the vacuum model yields a proof"),
        ({"margin_km": float("nan")}, "margin_km must be a finite number or null"),
        ({"evidence": list(EVIDENCE)}, "evidence must be a tuple"),
        ({"evidence": ("zz",)}, "evidence digest must be 64 lowercase hex digits"),
        ({"evidence": (EVIDENCE[1], EVIDENCE[0])}, "evidence digests must be sorted and unique"),
        ({"expires_at_unix_s": -1}, "expires_at must be a non-negative integer of seconds"),
        ({"expires_at_unix_s": 0}, "expires_at must be after issued_at"),
        ({"verifier_id": ""}, "verifier_id must be a non-empty printable string"),
    ],
)  # fmt: skip
def test_each_invalid_field_is_named_exactly(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Certificate(**_fields(**over))
    assert str(info.value) == message


def test_structural_messages_are_exact(verifier_key: PrivateKey) -> None:
    good = json.loads(_issue(verifier_key))["certificate"]
    cases: list[tuple[Any, str]] = [
        ([good], "certificate must be a JSON object"),
        ({**good, "authorized_region": "x"}, "authorized_region must be {spec, digest}"),
        ({**good, "evidence": "x"}, "evidence must be a list"),
    ]
    for obj, message in cases:
        with pytest.raises(ValueError) as info:
            Certificate.from_json_dict(obj)
        assert str(info.value) == message
    for data, message in [
        ("x", "certificate must be bytes"),
        (b"[]", "certificate file must be {certificate, signature}"),
        (b'{"certificate": 1, "signature": "00"}',
         "certificate is not in canonical form (edited?)"),
        (b'{"certificate":1,"signature":"00"}', "signature must be 128 lowercase hex digits"),
    ]:  # fmt: skip
        with pytest.raises(DecodeError) as dinfo:
            SignedCertificate.from_bytes(data)  # type: ignore[arg-type]
        assert str(dinfo.value) == message
    cert = SignedCertificate.from_bytes(_issue(verifier_key)).certificate
    with pytest.raises(ValueError) as info:
        SignedCertificate(certificate=cert, signature=b"")
    assert str(info.value) == "signature must be 64 bytes"


def test_issue_refuses_a_result_without_its_fields(verifier_key: PrivateKey) -> None:
    result = result_dict()
    del result["target"]
    with pytest.raises(LocalProtocolError) as info:
        _issue(verifier_key, result)
    assert info.value.reason == "bad_certificate"
    assert str(info.value) == "cannot issue certificate: KeyError('target')"


def test_a_changed_zone_names_both_digests(verifier_key: PrivateKey, registry: Registry) -> None:
    with pytest.raises(Superseded) as info:
        verify_certificate(
            _issue(verifier_key), registry, now_unix_s=NOW_S + 1, region_digest_hex="ae" * 32
        )
    assert f"(digest {'ae' * 6}..., certified {AUTH_REGION_DIGEST[:12]}...)" in str(info.value)


# -- encoding a result once for its row and its certificate -------------------------------

_json_scalar = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
_json_text = st.text() | st.just("\x00chiploc-region\x00")  # the splice's own marker too
_json = st.recursive(
    _json_scalar | _json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_json_text, inner, max_size=4),
    max_leaves=12,
)


@given(extra=st.dictionaries(st.text(max_size=8), _json, max_size=5), region=_json)
def test_encode_result_is_the_canonical_encoding(extra: dict[str, Any], region: Any) -> None:
    """Whatever the result holds (the marker text included), the one-pass encoding is the
    canonical JSON the store keeps and the certificate's region digest is of the region's."""
    from chiploc.verifier._certificate import encode_result

    result = {**extra, **result_dict(), "region": region}
    enc = encode_result(result)
    assert enc.json == canonical_json(result)
    assert enc.region_digest_hex == (None if region is None else region_digest_hex(region))


def test_certificate_from_an_encoded_result_is_the_same_certificate(
    verifier_key: PrivateKey, registry: Registry
) -> None:
    from chiploc.verifier._certificate import encode_result

    for result in (result_dict(), result_dict("UNREACHABLE", region=None, margin_km=None)):
        assert _issue(verifier_key, result, encoded=encode_result(result)) == _issue(
            verifier_key, result
        )
    # the encoding of another result (one without a region) is refused, not signed
    with pytest.raises(LocalProtocolError) as info:
        _issue(verifier_key, result_dict(), encoded=encode_result(result_dict(region=None)))
    assert info.value.reason == "bad_certificate"
    # a summary without the region (what a fleet worker ships) and the encoding of the
    # whole result sign the same certificate; the region's digest comes from the encoding
    for result in (result_dict(), result_dict("UNREACHABLE", region=None, margin_km=None)):
        summary = {k: v for k, v in result.items() if k != "region"}
        assert _issue(verifier_key, summary, encoded=encode_result(result)) == _issue(
            verifier_key, result
        )
    # a summary that says something else than the encoding is refused, field by field
    result = result_dict()
    for key, other in (("margin_km", 9999.0), ("verdict", "VIOLATION"), ("target", "chip-2")):
        summary = {k: v for k, v in result.items() if k != "region"} | {key: other}
        with pytest.raises(LocalProtocolError) as info:
            _issue(verifier_key, summary, encoded=encode_result(result))
        assert f"the encoded result is not this result's ({key})" in str(info.value)
    # without the encoding a result must carry its region
    with pytest.raises(LocalProtocolError) as info:
        _issue(verifier_key, {k: v for k, v in result_dict().items() if k != "region"})
    assert str(info.value) == "cannot issue certificate: KeyError('region')"
