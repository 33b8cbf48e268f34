"""Signed verdict certificates.

A certificate file is canonical JSON (sorted keys, no whitespace, UTF-8)::

    {"certificate": {...fields...}, "signature": "<128 hex digits>"}

and the signature is Ed25519, by an enrolled verifier key, over
``CERTIFICATE_DOMAIN || canonical_json(certificate)``.

Invariants enforced by :func:`verify_certificate` (in this order, each one
raising; nothing returns a bare bool):

- the file is at most :data:`MAX_CERTIFICATE_BYTES`, strict UTF-8 JSON
  without duplicate keys, and byte-identical to its canonical re-encoding
  (one trailing newline allowed) - so any single changed byte is caught
  before or at the signature check (:class:`~chiploc.common.errors.DecodeError`);
- every field is present, of its type and in range, and no other field is;
  ``proof`` is true only for the vacuum model; a region digest is present
  for every verdict that has a region; evidence is sorted, unique and
  non-empty except for UNREACHABLE (:class:`~chiploc.common.errors.DecodeError`);
- the signer is an enrolled verifier that is not revoked
  (:class:`~chiploc.common.errors.UnknownIdentity`,
  :class:`~chiploc.common.errors.RevokedIdentity`, reason ``verifier_revoked``);
- the signature verifies under that key (:class:`~chiploc.common.errors.BadSignature`);
- ``issued_at - leeway <= now < expires_at + leeway``
  (:class:`~chiploc.common.errors.StaleMessage`, reason ``not_yet_valid`` or
  ``expired``);
- the chip is still enrolled and not revoked (reasons ``unknown_chip``,
  ``chip_revoked``): revoking a chip withdraws every certificate issued for it;
- the registry still authorizes the chip for the region the certificate judged it
  against, by spec and, when the caller gives it, by the zone's digest
  (:class:`~chiploc.common.errors.Superseded`, reason ``region_changed``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import nacl.exceptions
import nacl.signing

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
from chiploc.store import MODELS, VERDICTS, Store, canonical_json, parse_json_strict, sha256_hex
from chiploc.verifier._types import RegistryLike, Signer

__all__ = [
    "CERTIFICATE_DOMAIN",
    "CERTIFICATE_FORMAT",
    "DEFAULT_VALIDITY_S",
    "MAX_CERTIFICATE_BYTES",
    "Certificate",
    "CertificateStatus",
    "EncodedResult",
    "SignedCertificate",
    "certificate_status",
    "encode_result",
    "issue_certificate",
    "region_digest_hex",
    "verify_certificate",
]

CERTIFICATE_FORMAT: Final = "chiploc-certificate/1"
CERTIFICATE_DOMAIN: Final = b"chiploc/verdict-certificate/v1\x00"
#: Default lifetime of a certificate: a location verdict goes stale.
DEFAULT_VALIDITY_S: Final = 24 * 3600
MAX_CERTIFICATE_BYTES: Final = 1 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_SIG = re.compile(r"[0-9a-f]{128}")
_FIELDS: Final = frozenset(
    {
        "format",
        "chip_id",
        "authorized_region",
        "verdict",
        "model",
        "proof",
        "region_digest",
        "margin_km",
        "evidence",
        "issued_at",
        "expires_at",
        "verifier_id",
    }
)
_MAX_UNIX_S: Final = 2**53


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 1024 or not value.isprintable():
        raise ValueError(f"{name} must be a non-empty printable string")
    return value


def _digest(name: str, value: object) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ValueError(f"{name} must be 64 lowercase hex digits")
    return value


def _unix_s(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _MAX_UNIX_S:
        raise ValueError(f"{name} must be a non-negative integer of seconds")
    return value


def region_digest_hex(region_geojson: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a computed region (GeoJSON geometry)."""
    return sha256_hex(canonical_json(region_geojson))


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedResult:
    """A solve result's canonical JSON (what the store keeps) and the digest of its region's
    canonical JSON (what its certificate names), from ONE encoding of the region."""

    json: bytes
    region_digest_hex: str | None


#: Stands for the region while the rest of a result is encoded. Should another value of the
#: result encode to the same bytes, the marker is found twice and the result is encoded
#: whole instead.
_REGION_MARK: Final = "\x00chiploc-region\x00"
_REGION_MARK_JSON: Final = canonical_json(_REGION_MARK)


def encode_result(result: Mapping[str, Any]) -> EncodedResult:
    """``canonical_json(result)`` and ``region_digest_hex(result["region"])``, encoding the
    region (most of the bytes: its coordinates) once instead of twice.

    Canonical JSON has no whitespace and sorts keys at every level, so a value's encoding
    does not depend on where it sits: the result encoded with a marker for its region, the
    marker then replaced by the region's encoding, is byte for byte the result's encoding.
    """
    region = result.get("region")
    if region is None:
        return EncodedResult(json=canonical_json(dict(result)), region_digest_hex=None)
    region_json = canonical_json(region)
    rest = canonical_json({**result, "region": _REGION_MARK})
    if rest.count(_REGION_MARK_JSON) != 1:  # the marker inside some other value: no splice
        return EncodedResult(
            json=canonical_json(dict(result)), region_digest_hex=sha256_hex(region_json)
        )
    return EncodedResult(
        json=rest.replace(_REGION_MARK_JSON, region_json),
        region_digest_hex=sha256_hex(region_json),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificate:
    """The signed statement: what was decided about one chip, on what evidence, until when."""

    chip_id: str
    authorized_region_spec: str
    authorized_region_digest_hex: str
    verdict: str
    model: str
    proof: bool
    region_digest_hex: str | None
    margin_km: float | None
    evidence: tuple[str, ...]
    issued_at_unix_s: int
    expires_at_unix_s: int
    verifier_id: str
    format: str = CERTIFICATE_FORMAT

    def __post_init__(self) -> None:
        if self.format != CERTIFICATE_FORMAT:
            raise ValueError(f"unsupported certificate format {self.format!r}")
        _text("chip_id", self.chip_id)
        _text("authorized region spec", self.authorized_region_spec)
        _digest("authorized region digest", self.authorized_region_digest_hex)
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}")
        if not isinstance(self.proof, bool):
            raise ValueError("proof must be a boolean")
        if self.proof and self.model != "vacuum":
            raise ValueError("only the vacuum model yields a proof")
        if self.region_digest_hex is not None:
            _digest("region digest", self.region_digest_hex)
        elif self.verdict in {"COMPLIANT", "VIOLATION", "INCONCLUSIVE"}:
            raise ValueError(f"a {self.verdict} certificate needs a region digest")
        if self.margin_km is not None and (
            not isinstance(self.margin_km, int | float)
            or isinstance(self.margin_km, bool)
            or not math.isfinite(self.margin_km)
        ):
            raise ValueError("margin_km must be a finite number or null")
        if not isinstance(self.evidence, tuple):
            raise ValueError("evidence must be a tuple")
        for d in self.evidence:
            _digest("evidence digest", d)
        if list(self.evidence) != sorted(set(self.evidence)):
            raise ValueError("evidence digests must be sorted and unique")
        if not self.evidence and self.verdict != "UNREACHABLE":
            raise ValueError(f"a {self.verdict} certificate needs evidence reports")
        _unix_s("issued_at", self.issued_at_unix_s)
        _unix_s("expires_at", self.expires_at_unix_s)
        if self.expires_at_unix_s <= self.issued_at_unix_s:
            raise ValueError("expires_at must be after issued_at")
        _text("verifier_id", self.verifier_id)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "chip_id": self.chip_id,
            "authorized_region": {
                "spec": self.authorized_region_spec,
                "digest": self.authorized_region_digest_hex,
            },
            "verdict": self.verdict,
            "model": self.model,
            "proof": self.proof,
            "region_digest": self.region_digest_hex,
            "margin_km": self.margin_km,
            "evidence": list(self.evidence),
            "issued_at": self.issued_at_unix_s,
            "expires_at": self.expires_at_unix_s,
            "verifier_id": self.verifier_id,
        }

    @classmethod
    def from_json_dict(cls, obj: object) -> Certificate:
        """Strict decode; ValueError names what is wrong."""
        if not isinstance(obj, dict):
            raise ValueError("certificate must be a JSON object")
        keys = set(obj)
        if keys != _FIELDS:
            missing, extra = sorted(_FIELDS - keys), sorted(keys - _FIELDS)
            raise ValueError(f"certificate fields wrong: missing {missing}, unexpected {extra}")
        region = obj["authorized_region"]
        if not isinstance(region, dict) or set(region) != {"spec", "digest"}:
            raise ValueError("authorized_region must be {spec, digest}")
        evidence = obj["evidence"]
        if not isinstance(evidence, list):
            raise ValueError("evidence must be a list")
        return cls(
            format=obj["format"],
            chip_id=obj["chip_id"],
            authorized_region_spec=region["spec"],
            authorized_region_digest_hex=region["digest"],
            verdict=obj["verdict"],
            model=obj["model"],
            proof=obj["proof"],
            region_digest_hex=obj["region_digest"],
            margin_km=obj["margin_km"],
            evidence=tuple(evidence),
            issued_at_unix_s=obj["issued_at"],
            expires_at_unix_s=obj["expires_at"],
            verifier_id=obj["verifier_id"],
        )

    def signed_message(self) -> bytes:
        """The exact bytes the verifier key signs."""
        return CERTIFICATE_DOMAIN + canonical_json(self.to_json_dict())

    def summary(self) -> str:
        """One line for humans."""
        kind = "proof" if self.proof else "estimate"
        margin = "" if self.margin_km is None else f", margin {self.margin_km:.1f} km"
        return (
            f"chip {self.chip_id}: {self.verdict} for {self.authorized_region_spec} "
            f"({self.model}, {kind}{margin}); {len(self.evidence)} evidence reports; "
            f"valid {self.issued_at_unix_s}..{self.expires_at_unix_s}; "
            f"signed by verifier {self.verifier_id}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedCertificate:
    """A certificate with its signature, decoded but NOT yet trusted."""

    certificate: Certificate
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise ValueError("signature must be 64 bytes")

    def to_bytes(self) -> bytes:
        """The canonical file contents (no trailing newline)."""
        return canonical_json(
            {"certificate": self.certificate.to_json_dict(), "signature": self.signature.hex()}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedCertificate:
        """Structural decode only; raises DecodeError. Does not check the signature."""
        if not isinstance(data, bytes):
            raise DecodeError("certificate must be bytes", reason="malformed")
        if len(data) > MAX_CERTIFICATE_BYTES:
            raise DecodeError(
                f"certificate larger than {MAX_CERTIFICATE_BYTES} bytes", reason="oversized"
            )
        body = data[:-1] if data.endswith(b"\n") else data
        obj = parse_json_strict(body, what="certificate")
        if not isinstance(obj, dict) or set(obj) != {"certificate", "signature"}:
            raise DecodeError(
                "certificate file must be {certificate, signature}", reason="malformed"
            )
        if canonical_json(obj) != body:
            raise DecodeError(
                "certificate is not in canonical form (edited?)", reason="not_canonical"
            )
        signature = obj["signature"]
        if not isinstance(signature, str) or not _HEX_SIG.fullmatch(signature):
            raise DecodeError("signature must be 128 lowercase hex digits", reason="malformed")
        try:
            certificate = Certificate.from_json_dict(obj["certificate"])
        except (ValueError, TypeError) as e:
            raise DecodeError(f"malformed certificate: {e}", reason="malformed") from e
        return cls(certificate=certificate, signature=bytes.fromhex(signature))

    @property
    def digest_hex(self) -> str:
        """SHA-256 of the canonical file contents: the certificate's name."""
        return sha256_hex(self.to_bytes())


class _HasJsonDict(Protocol):
    def to_json_dict(self) -> dict[str, Any]: ...


#: The result's fields a certificate states (beside the region's digest).
CERTIFIED_KEYS: Final = ("target", "verdict", "model", "proof", "region_spec", "margin_km")


def issue_certificate(
    result: Mapping[str, Any] | _HasJsonDict,
    *,
    authorized_region_digest_hex: str,
    evidence_digests: Sequence[str],
    signer: Signer,
    issued_at_unix_s: int,
    validity_s: int = DEFAULT_VALIDITY_S,
    encoded: EncodedResult | None = None,
) -> bytes:
    """Sign a certificate for a solve result; return the canonical file bytes.

    ``result`` is a ``solver.SolveResult`` or its ``to_json_dict()``;
    ``authorized_region_digest_hex`` is ``AuthorizedRegion.digest_hex`` of the
    region the chip was judged against; ``evidence_digests`` are the
    ``digest_hex`` of every report the verdict used. ``encoded``:
    :func:`encode_result` of the same result, when the caller has it (its region
    digest is used instead of encoding the region again; ``result`` may then leave its
    region out, as a fleet worker's summary of a result does: the region travels only inside
    ``encoded``).
    """
    obj = result if isinstance(result, Mapping) else result.to_json_dict()
    if not isinstance(validity_s, int) or validity_s <= 0:
        raise LocalProtocolError("validity_s must be a positive integer", reason="bad_certificate")
    try:
        margin = obj["margin_km"]
        if encoded is None:
            region = obj["region"]
            region_digest = None if region is None else region_digest_hex(region)
        elif "region" in obj and (obj["region"] is None) != (encoded.region_digest_hex is None):
            raise ValueError("the encoded result is not this result's (region)")
        else:
            for key in CERTIFIED_KEYS:  # what the certificate states, as the encoding has it
                if b'"%s":%s' % (key.encode(), canonical_json(obj[key])) not in encoded.json:
                    raise ValueError(f"the encoded result is not this result's ({key})")
            region_digest = encoded.region_digest_hex
        certificate = Certificate(
            chip_id=obj["target"],
            authorized_region_spec=obj["region_spec"],
            authorized_region_digest_hex=authorized_region_digest_hex,
            verdict=obj["verdict"],
            model=obj["model"],
            proof=obj["proof"],
            region_digest_hex=region_digest,
            margin_km=None if margin is None else float(margin),
            evidence=tuple(sorted(set(evidence_digests))),
            issued_at_unix_s=issued_at_unix_s,
            expires_at_unix_s=issued_at_unix_s + validity_s,
            verifier_id=signer.id,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise LocalProtocolError(
            f"cannot issue certificate: {e!r}", reason="bad_certificate"
        ) from e
    signature = signer.sign(certificate.signed_message())
    return SignedCertificate(certificate=certificate, signature=bytes(signature)).to_bytes()


def verify_certificate(
    data: bytes,
    registry: RegistryLike,
    *,
    now_unix_s: int,
    leeway_s: int = 0,
    region_digest_hex: str | None = None,
) -> Certificate:
    """Verify a certificate file against the registry at time ``now_unix_s``.

    ``region_digest_hex``, when given, is the digest of the chip's authorized zone as
    loaded now (``AuthorizedRegion.digest_hex``): a zone whose geometry changed under
    the same spec (a GeoJSON file edited) also supersedes the certificate.
    Returns the trusted :class:`Certificate`; raises DecodeError, UnknownIdentity,
    RevokedIdentity, BadSignature, StaleMessage or Superseded.
    """

    signed = SignedCertificate.from_bytes(data)
    cert = signed.certificate
    try:
        entry = registry.verifier(cert.verifier_id)
    except RevokedIdentity as e:
        raise RevokedIdentity(
            f"verifier {cert.verifier_id!r} is revoked: its certificates no longer stand",
            reason="verifier_revoked",
        ) from e
    if entry.revoked:
        raise RevokedIdentity(
            f"verifier {cert.verifier_id!r} is revoked: its certificates no longer stand",
            reason="verifier_revoked",
        )
    try:
        nacl.signing.VerifyKey(entry.public_key).verify(cert.signed_message(), signed.signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError) as e:
        raise BadSignature(
            f"certificate signature does not verify under verifier {cert.verifier_id!r}"
        ) from e
    if now_unix_s + leeway_s < cert.issued_at_unix_s:
        raise StaleMessage(
            f"certificate is not valid before {cert.issued_at_unix_s} (now {now_unix_s})",
            reason="not_yet_valid",
        )
    if now_unix_s - leeway_s >= cert.expires_at_unix_s:
        raise StaleMessage(
            f"certificate expired at {cert.expires_at_unix_s} (now {now_unix_s})",
            reason="expired",
        )
    try:
        chip = registry.chip(cert.chip_id)
    except RevokedIdentity as e:
        raise RevokedIdentity(
            f"chip {cert.chip_id!r} is revoked: its certificate no longer stands",
            reason="chip_revoked",
        ) from e
    except UnknownIdentity as e:
        raise UnknownIdentity(
            f"chip {cert.chip_id!r} is not enrolled in the registry", reason="unknown_chip"
        ) from e
    if chip.revoked:
        raise RevokedIdentity(
            f"chip {cert.chip_id!r} is revoked: its certificate no longer stands",
            reason="chip_revoked",
        )
    if chip.region != cert.authorized_region_spec:
        raise Superseded(
            f"chip {cert.chip_id!r} is now authorized for {chip.region!r}, not "
            f"{cert.authorized_region_spec!r} as certified",
            reason="region_changed",
        )
    if region_digest_hex is not None and region_digest_hex != cert.authorized_region_digest_hex:
        raise Superseded(
            f"the zone {cert.authorized_region_spec!r} has changed since the certificate was "
            f"issued (digest {region_digest_hex[:12]}..., certified "
            f"{cert.authorized_region_digest_hex[:12]}...)",
            reason="region_changed",
        )
    return cert


# --------------------------------------------------------------------------- standing


@dataclass(frozen=True, slots=True)
class _StoredVerifier:
    id: str
    public_key: bytes
    revoked: bool


@dataclass(frozen=True, slots=True)
class _StoredChip:
    id: str
    region: str
    revoked: bool


class _StoreRegistry:
    """The identities as the verifier's store last recorded them (enrolment history)."""

    def __init__(self, store: Store) -> None:
        self._verifiers: dict[str, _StoredVerifier] = {}
        self._chips: dict[str, _StoredChip] = {}
        self.revoked_at_unix_ns: dict[tuple[str, str], int] = {}
        for e in store.enrolments():  # oldest first: the last record of an id wins
            key = (e.role, e.identity_id)
            if e.revoked and key not in self.revoked_at_unix_ns:
                self.revoked_at_unix_ns[key] = e.recorded_at_unix_ns
            if e.role == "verifier":
                self._verifiers[e.identity_id] = _StoredVerifier(
                    e.identity_id, e.public_key, e.revoked
                )
            elif e.role == "chip":
                region = e.details.get("region_spec")
                self._chips[e.identity_id] = _StoredChip(
                    e.identity_id, region if isinstance(region, str) else "", e.revoked
                )

    def verifier(self, identity: str, /) -> _StoredVerifier:
        got = self._verifiers.get(identity)
        if got is None:
            raise UnknownIdentity(f"verifier {identity!r} is not in this store's enrolments")
        return got  # revocation is judged by verify_certificate, with its own reason

    def chip(self, identity: str, /) -> _StoredChip:
        got = self._chips.get(identity)
        if got is None:
            raise UnknownIdentity(f"chip {identity!r} is not in this store's enrolments")
        return got


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateStatus:
    """Whether a certificate still stands, as the verifier's store knows it.

    ``stands`` is True only if the certificate was issued and stored by this verifier,
    verifies under the verifier key the store enrolled, has not expired, and neither
    its chip nor its verifier has been revoked, nor the chip's authorized region
    changed, since. Otherwise ``reason`` is the stable code (``chip_revoked``,
    ``verifier_revoked``, ``region_changed``, ``expired``, ``not_yet_valid``,
    ``not_issued_here``, ...) and ``detail`` says why in words.
    """

    certificate: Certificate
    digest_hex: str
    stands: bool
    reason: str
    detail: str
    revoked_at_unix_ns: int | None = None

    def summary(self) -> str:
        state = "STANDS" if self.stands else f"DOES NOT STAND [{self.reason}]"
        return f"certificate {self.digest_hex[:16]}... {state}: {self.detail}"


def certificate_status(data: bytes, store: Store, *, now_unix_s: int) -> CertificateStatus:
    """Judge a certificate against the verifier's store (its issued certificates and the
    enrolment history it recorded from each registry it loaded). A malformed file raises
    DecodeError; every other outcome is a :class:`CertificateStatus`."""
    signed = SignedCertificate.from_bytes(data)
    cert = signed.certificate
    digest = signed.digest_hex
    body = signed.to_bytes()
    issued = any(v.certificate == body for v in store.verdicts(chip_id=cert.chip_id))
    if not issued:
        return CertificateStatus(
            certificate=cert,
            digest_hex=digest,
            stands=False,
            reason="not_issued_here",
            detail=f"this store holds no such certificate for chip {cert.chip_id!r}",
        )
    view = _StoreRegistry(store)
    try:
        verify_certificate(data, view, now_unix_s=now_unix_s)
    except (VerificationError, DecodeError) as e:
        role = {"chip_revoked": "chip", "verifier_revoked": "verifier"}.get(e.reason)
        ident = cert.chip_id if role == "chip" else cert.verifier_id
        return CertificateStatus(
            certificate=cert,
            digest_hex=digest,
            stands=False,
            reason=e.reason,
            detail=str(e),
            revoked_at_unix_ns=None if role is None else view.revoked_at_unix_ns.get((role, ident)),
        )
    return CertificateStatus(
        certificate=cert,
        digest_hex=digest,
        stands=True,
        reason="valid",
        detail=cert.summary(),
    )
