"""The fuzz lab: :class:`FuzzLab` builds a valid corpus (signed datagrams, reports,
registries, certificates, key files, CSV and GeoJSON files) and checks one input
against one reader (:meth:`FuzzLab.check`), giving a :class:`FuzzResult`;
:data:`FUZZ_TARGETS` names the readers.

Invariants:

* A check classifies an input as ``rejected`` (one of the project's own errors),
  ``accepted`` (and then, for signed formats, it must carry the original signed
  content), ``forgery`` (accepted but not the original) or ``crash`` (any other
  exception). Only the last two are failures.
* The corpus is deterministic (keys from fixed labels, fixed clocks).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from chiploc.common.errors import DecodeError, InputError, ProtocolError, VerificationError
from chiploc.protocol import (
    Hello,
    MessageType,
    ProbeRecord,
    Registry,
    decode_datagram,
    response_message,
    sign_report,
    verify_report,
)

from ._fault_lab import _NS_PER_S, _identities
from ._fuzz_inputs import mutate

__all__ = ["FUZZ_TARGETS", "FuzzLab", "FuzzResult"]

#: The readers :class:`FuzzLab` checks, by name.
FUZZ_TARGETS: Final = (
    "datagram",
    "hello",
    "response",
    "report",
    "registry",
    "registry_signed",
    "private_key",
    "public_key",
    "certificate",
    "measurement_csv",
    "calibration_csv",
    "region_geojson",
    "region_spec",
)

#: Rejections that are the project's own, expected errors for bad input.
_EXPECTED: Final = (ProtocolError, VerificationError, InputError)


@dataclass(frozen=True, slots=True, kw_only=True)
class FuzzResult:
    """How one reader took one input: ``rejected`` / ``accepted`` (fine), ``forgery`` /
    ``crash`` (failures)."""

    target: str
    outcome: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in ("forgery", "crash")


_FUZZ_NOW_NS: Final = 1_700_000_000 * _NS_PER_S


class FuzzLab:
    """A deterministic corpus of valid inputs and one checker per reader.

    ``directory`` receives the scratch files (key files, CSV, GeoJSON) the file
    readers are given."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from chiploc.solver import Measurement, load_region, solve
        from chiploc.verifier import issue_certificate

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ids = _identities("fuzz")
        ids = self.ids
        chip = ids.chips[0]
        self.session_id = bytes(range(16))
        self.nonce = bytes(range(16, 32))
        hello = Hello.create(
            ids.landmark,
            session_id=self.session_id,
            chip_id=chip.id,
            issued_at_unix_ns=_FUZZ_NOW_NS,
        ).to_bytes()
        message = response_message(
            session_id=self.session_id,
            chip_id=chip.id,
            landmark_id=ids.landmark.id,
            seq=7,
            nonce=self.nonce,
        )
        response = (
            bytes((0xC1, 0x0C, 0x01, MessageType.RESPONSE))
            + self.session_id
            + (7).to_bytes(4, "big")
            + chip.sign(message)
        )
        report = sign_report(
            ids.landmark,
            chip_id=chip.id,
            session_id=self.session_id,
            chip_address="127.0.0.1:7000",
            started_at_unix_ns=_FUZZ_NOW_NS,
            finished_at_unix_ns=_FUZZ_NOW_NS + 5_000_000,
            probes=[
                ProbeRecord(
                    seq=7,
                    nonce=self.nonce,
                    rtt_ns=1_234_567,
                    chip_signature=chip.sign(message),
                    timestamp_source="kernel",
                ),
                ProbeRecord(
                    seq=8,
                    nonce=bytes(range(32, 48)),
                    rtt_ns=None,
                    chip_signature=bytes(64),
                    timestamp_source="none",
                ),
            ],
        )
        region = load_region(ids.registry.chip(chip.id).region)  # as the registry authorizes
        result = solve(
            chip.id,
            [Measurement(landmark=ids.landmark.id, lat=50.11, lon=8.68, rtt_ms=1.2)],
            region,
        )
        certificate = issue_certificate(
            result,
            authorized_region_digest_hex=region.digest_hex,
            evidence_digests=[report.digest_hex],
            signer=ids.verifier,
            issued_at_unix_s=_FUZZ_NOW_NS // _NS_PER_S,
        )
        registry = ids.registry.to_signed_json(ids.authority)
        body = json.dumps(json.loads(registry)["registry"]).encode()
        private = json.dumps(
            {
                "format": "chiploc-private-key/1",
                "role": "chip",
                "id": chip.id,
                "seed": chip.seed.hex(),
            }
        ).encode()
        public = json.dumps(
            {
                "format": "chiploc-public-key/1",
                "role": "chip",
                "id": chip.id,
                "public_key": chip.public_key.key_bytes.hex(),
            }
        ).encode()
        square = {
            "type": "Polygon",
            "coordinates": [[[8.0, 50.0], [9.0, 50.0], [9.0, 51.0], [8.0, 51.0], [8.0, 50.0]]],
        }
        self.originals: dict[str, bytes] = {
            "hello": hello,
            "response": response,
            "report": report.raw,
            "registry": registry,
            "certificate": certificate,
        }
        self.corpus: dict[str, tuple[bytes, ...]] = {
            "datagram": (hello, response),
            "hello": (hello,),
            "response": (response,),
            "report": (report.raw,),
            "registry": (registry,),
            "registry_signed": (body,),
            "private_key": (private,),
            "public_key": (public,),
            "certificate": (certificate,),
            "measurement_csv": (
                b"target,landmark,lat,lon,rtt_ms,overhead_ms\n"
                b"chip-1,lm-fra,50.11,8.68,1.2,0\nchip-1,lm-par,48.86,2.35,6.5,\n",
            ),
            "calibration_csv": (
                b"landmark,lat,lon,peer,peer_lat,peer_lon,rtt_ms\n"
                b"lm-fra,50.11,8.68,lm-par,48.86,2.35,7.1\n"
                b"lm-fra,50.11,8.68,lm-ber,52.52,13.40,9.3\n",
            ),
            "region_geojson": (
                json.dumps(square).encode(),
                json.dumps({"type": "Feature", "geometry": square}).encode(),
            ),
            "region_spec": (
                b"country:DEU",
                b"countries:DEU,FRA",
                b"not:CHN",
                b"circle:50.1,8.6,300",
            ),
        }
        self._checks: dict[str, Callable[[bytes], object]] = {
            "datagram": decode_datagram,
            "hello": self._hello,
            "response": self._response,
            "report": lambda d: verify_report(d, ids.registry),
            "registry": lambda d: Registry.from_signed_json(
                d, authority_public_key=ids.authority.public_key.key_bytes, source="fuzz"
            ),
            "registry_signed": self._registry_signed,
            "private_key": lambda d: self._file_reader(d, "k.key", "private_key"),
            "public_key": lambda d: self._file_reader(d, "k.pub", "public_key"),
            "certificate": self._certificate,
            "measurement_csv": lambda d: self._file_reader(d, "m.csv", "measurement_csv"),
            "calibration_csv": lambda d: self._file_reader(d, "c.csv", "calibration_csv"),
            "region_geojson": lambda d: self._file_reader(d, "r.geojson", "region_geojson"),
            "region_spec": self._region_spec,
        }

    # -- per-reader checks: return the accepted value, or raise
    def _hello(self, data: bytes) -> object:
        from chiploc.protocol import verify_hello

        hello = decode_datagram(data)
        if not isinstance(hello, Hello):
            raise DecodeError("not a hello", reason="unexpected_type")
        return verify_hello(
            hello,
            self.ids.registry,
            chip_id=self.ids.chips[0].id,
            now_unix_ns=_FUZZ_NOW_NS,
            max_skew_ns=30 * _NS_PER_S,
        )

    def _response(self, data: bytes) -> object:
        from chiploc.protocol import Response, verify_response

        response = decode_datagram(data)
        if not isinstance(response, Response):
            raise DecodeError("not a response", reason="unexpected_type")
        verify_response(
            self.ids.chips[0].public_key.key_bytes,
            session_id=response.session_id,
            chip_id=self.ids.chips[0].id,
            landmark_id=self.ids.landmark.id,
            seq=response.seq,
            nonce=self.nonce,
            signature=response.signature,
        )
        return response

    def _registry_signed(self, body: bytes) -> object:
        """An authority-signed but possibly malformed body: parsing must still only reject."""
        from chiploc.protocol import canonical_json

        try:
            parsed = json.loads(body)
            message = canonical_json(parsed)
        except (ValueError, RecursionError, TypeError):
            doc = b'{"format":"chiploc-registry/1","registry":' + body + b',"signature":"00"}'
        else:
            from chiploc.protocol import REGISTRY_DOMAIN

            signature = self.ids.authority.sign(REGISTRY_DOMAIN + message).hex()
            doc = json.dumps(
                {"format": "chiploc-registry/1", "registry": parsed, "signature": signature}
            ).encode()
        return Registry.from_signed_json(
            doc, authority_public_key=self.ids.authority.public_key.key_bytes, source="fuzz"
        )

    def _certificate(self, data: bytes) -> object:
        from chiploc.verifier import verify_certificate

        return verify_certificate(data, self.ids.registry, now_unix_s=_FUZZ_NOW_NS // _NS_PER_S)

    def _region_spec(self, data: bytes) -> object:
        from chiploc.solver import load_region

        text = data.decode("utf-8", "replace")
        if text.strip().startswith(("/", ".", "~")) or "geojson" in text or "json" in text:
            # a spec naming a file is a user's own choice of file (it may be /dev/zero):
            # the GeoJSON reader is fuzzed through region_geojson instead
            text = "x" + text
        return load_region(text)

    def _file_reader(self, data: bytes, name: str, target: str) -> object:
        from chiploc.protocol import load_private_key, load_public_key
        from chiploc.solver import Calibration, load_region, parse_measurements_csv

        path = self.directory / name
        path.write_bytes(data)
        path.chmod(0o600)
        if target == "private_key":
            return load_private_key(path)
        if target == "public_key":
            return load_public_key(path)
        if target == "measurement_csv":  # the parser the CLI runs after decoding the file
            return parse_measurements_csv(data.decode("utf-8", "surrogateescape"), source=str(path))
        if target == "calibration_csv":
            return Calibration.from_csv(path)
        return load_region(str(path))

    def _forged(self, target: str, data: bytes, value: object) -> bool:
        """Accepted, but not what the signer signed?"""
        if target in ("hello", "response", "report"):
            return data != self.originals[target]
        if target == "registry":
            return value != self.ids.registry
        if target == "certificate":
            return data.rstrip(b"\n") != self.originals["certificate"].rstrip(b"\n")
        return False

    def check(self, target: str, data: bytes) -> FuzzResult:
        """Run one input through one reader and classify what happened."""
        try:
            value = self._checks[target](data)
        except _EXPECTED as e:
            return FuzzResult(target=target, outcome="rejected", detail=e.reason)
        except Exception as e:  # the finding this exists to catch
            return FuzzResult(target=target, outcome="crash", detail=f"{type(e).__name__}: {e}")
        if self._forged(target, data, value):
            return FuzzResult(target=target, outcome="forgery", detail=data[:200].hex())
        return FuzzResult(target=target, outcome="accepted")

    def inputs(self, target: str, rng: random.Random, count: int) -> Iterator[bytes]:
        """``count`` seeded mutations of the target's corpus."""
        seeds = self.corpus[target]
        for _ in range(count):
            yield mutate(rng.choice(seeds), rng)
