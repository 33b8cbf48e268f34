"""The small interfaces the verifier codes against (``protocol`` implements them).

``protocol.Registry`` satisfies :class:`RegistryLike` and
``protocol.PrivateKey`` satisfies :class:`Signer`; tests may use any other
object with the same shape.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ChipEntryLike", "RegistryLike", "Signer", "VerifierEntryLike"]


class VerifierEntryLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def revoked(self) -> bool: ...


class ChipEntryLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def revoked(self) -> bool: ...


class RegistryLike(Protocol):
    def verifier(self, identity: str, /) -> VerifierEntryLike:
        """The enrolled verifier; raises UnknownIdentity / RevokedIdentity."""
        ...

    def chip(self, identity: str, /) -> ChipEntryLike:
        """The enrolled chip; raises UnknownIdentity / RevokedIdentity."""
        ...


class Signer(Protocol):
    """A verifier's signing key."""

    @property
    def id(self) -> str: ...
    def sign(self, message: bytes, /) -> bytes:
        """64-byte detached Ed25519 signature of ``message``."""
        ...
