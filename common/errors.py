"""The one exception tree of chiploc.

Branches follow trust boundaries, so a caller can tell *whose* fault a failure
is and count it under a stable ``reason`` code (the label used by ``/metrics``
and by rejection counters everywhere)::

    ChiplocError
    ├── ProtocolError                 the wire format
    │   ├── DecodeError (ValueError)  bytes from a peer that do not parse:
    │   │                             truncated, oversized, bad magic, wrong
    │   │                             version, unknown message type
    │   └── LocalProtocolError        we were asked to send something invalid
    ├── VerificationError             a message parsed but must not be trusted
    │   ├── BadSignature              signature does not verify
    │   ├── UnknownIdentity           chip / landmark / verifier not enrolled
    │   ├── RevokedIdentity           enrolled, but revoked
    │   ├── StaleMessage              outside its freshness window
    │   ├── ReplayDetected            seen before (nonce, sequence, session)
    │   ├── BindingError              valid signature over the wrong session,
    │   │                             nonce, chip, landmark or source address
    │   ├── Superseded                validly signed, but the registry has since
    │   │                             changed what it vouched for (a chip's
    │   │                             authorized region)
    │   └── RegistryNotTrusted        a registry file whose authority signature
    │                                 fails, or that rolls back (also a
    │                                 RegistryError)
    ├── TransientError                a retry may fix it (exit status 3)
    │   ├── NetworkError              sockets and peers
    │   │   ├── ProbeTimeout          no answer within the deadline
    │   │   └── TransportError        the socket or HTTP layer failed
    │   └── StoreUnavailable          a database server that cannot be reached
    │                                 (also a StoreError)
    ├── InputError (ValueError)       files and arguments given by a user
    │   ├── ConfigError               a TOML config or CLI argument
    │   ├── KeyFileError              a key file that is missing or malformed
    │   ├── RegistryError             a registry that is malformed or whose
    │   │                             authority signature fails
    │   ├── RegionSpecError           an authorized-region spec or GeoJSON file
    │   └── MeasurementError          a measurement CSV row or value
    └── StoreError                    the database (embedded SQLite or PostgreSQL)
        ├── IntegrityError            the audit chain or a stored record has
        │                             been edited, deleted or reordered
        └── StoreUnavailable          TRANSIENT: the database server cannot be
                                      reached (restart, network, pool exhausted)
                                      after the store's own retries; nothing was
                                      half-written, the same call may be retried

The ``chiploc`` command maps this tree to its exit status in one place
(``cli/__init__.py``): 0 success; 1 a check failed (ProtocolError,
VerificationError, StoreError: bad signature, tampering, revoked, superseded); 2 bad
input or usage (InputError, including a missing or unreadable file, and a store
database that does not exist: StoreError reason ``missing``); 3 transient
(TransientError: a landmark, server or database unreachable).

Every instance carries ``reason``: a short, stable, lowercase code such as
``"truncated"`` or ``"bad_signature"``. Subclasses set a default; a raiser may
pass a more specific one. Foreign exceptions are converted at one seam per
adapter with ``raise ... from e``; nothing outside this module defines a new
root.
"""

from __future__ import annotations

__all__ = [
    "BadSignature",
    "BindingError",
    "ChiplocError",
    "ConfigError",
    "DecodeError",
    "InputError",
    "IntegrityError",
    "KeyFileError",
    "LocalProtocolError",
    "MeasurementError",
    "NetworkError",
    "ProbeTimeout",
    "ProtocolError",
    "RegionSpecError",
    "RegistryError",
    "RegistryNotTrusted",
    "ReplayDetected",
    "RevokedIdentity",
    "StaleMessage",
    "StoreError",
    "StoreUnavailable",
    "Superseded",
    "TransientError",
    "TransportError",
    "UnknownIdentity",
    "VerificationError",
]


class ChiplocError(Exception):
    """Root of every error chiploc raises on purpose."""

    default_reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason: str = reason if reason is not None else self.default_reason


class ProtocolError(ChiplocError):
    default_reason = "protocol"


class DecodeError(ProtocolError, ValueError):
    """Bytes from a peer that are not a valid message. Never our bug."""

    default_reason = "malformed"


class LocalProtocolError(ProtocolError):
    """We were asked to encode or send something the protocol forbids."""

    default_reason = "local_protocol"


class VerificationError(ChiplocError):
    default_reason = "verification"


class BadSignature(VerificationError):
    default_reason = "bad_signature"


class UnknownIdentity(VerificationError):
    default_reason = "unknown_identity"


class RevokedIdentity(VerificationError):
    default_reason = "revoked"


class StaleMessage(VerificationError):
    default_reason = "stale"


class ReplayDetected(VerificationError):
    default_reason = "replayed"


class BindingError(VerificationError):
    default_reason = "wrong_binding"


class Superseded(VerificationError):
    """A signed statement whose premise the registry no longer holds (e.g. a chip's
    authorized region changed after its certificate was issued)."""

    default_reason = "superseded"


class TransientError(ChiplocError):
    """A failure a retry may fix: a peer, a server or a database could not be reached."""

    default_reason = "transient"


class NetworkError(TransientError):
    default_reason = "network"


class ProbeTimeout(NetworkError):
    default_reason = "timeout"


class TransportError(NetworkError):
    default_reason = "transport"


class InputError(ChiplocError, ValueError):
    default_reason = "bad_input"


class ConfigError(InputError):
    default_reason = "bad_config"


class KeyFileError(InputError):
    default_reason = "bad_key_file"


class RegistryError(InputError):
    default_reason = "bad_registry"


class RegistryNotTrusted(RegistryError, VerificationError):
    """A registry whose authority signature fails, or that would roll back a newer one."""

    default_reason = "bad_signature"


class RegionSpecError(InputError):
    default_reason = "bad_region"


class MeasurementError(InputError):
    default_reason = "bad_measurement"


class StoreError(ChiplocError):
    default_reason = "store"


class IntegrityError(StoreError):
    default_reason = "integrity"


class StoreUnavailable(StoreError, TransientError):
    """The database server is unreachable after the store's retries (transient).

    Every write is one transaction, so nothing is half-written: the caller may
    retry the same call later. Reason ``unavailable``, or ``commit_unknown``
    when the connection broke during COMMIT of a write that is not idempotent
    by key (whether it landed cannot be told; check before retrying).
    """

    default_reason = "unavailable"
