"""Ed25519 identities: roles, key pairs and their files.

Invariants enforced here:

* An identity id is 1-64 characters of ``[A-Za-z0-9._-]`` (:func:`validate_id`);
  the same rule holds on the wire, in the registry and in file names.
* A private key is a 32-byte Ed25519 seed; its public key is derived, never
  stored beside it in a way that could disagree.
* A private key file is written with mode 0600 and is refused on load if it is
  group- or world-accessible (:class:`~chiploc.common.errors.KeyFileError`).
* Every file problem (missing, unreadable, malformed, wrong role or id) is a
  ``KeyFileError`` naming the file.
* Keys are never accepted in each other's place: a private key file where a public
  key is expected (a pinned authority key, a key to enrol) is refused (reason
  ``private_key_given``), so a secret is never quietly copied around as if it were
  public; a public key file where a private key is needed is refused (reason
  ``public_key_given``). Both messages say which kind the file is and which is needed.

File format (UTF-8 JSON, one object)::

    <id>.key  {"format": "chiploc-private-key/1", "role": "chip", "id": "chip-1",
               "seed": "<64 hex chars: 32-byte Ed25519 seed>"}
    <id>.pub  {"format": "chiploc-public-key/1", "role": "chip", "id": "chip-1",
               "public_key": "<64 hex chars: 32-byte Ed25519 public key>"}
"""

from __future__ import annotations

import enum
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl import bindings as _nacl

from chiploc.common.errors import BadSignature, KeyFileError, LocalProtocolError

__all__ = [
    "PRIVATE_KEY_FORMAT",
    "PUBLIC_KEY_FORMAT",
    "PrivateKey",
    "PublicKey",
    "Role",
    "generate_private_key",
    "load_private_key",
    "load_public_key",
    "validate_id",
    "verify_signature",
    "write_keypair",
]

PRIVATE_KEY_FORMAT = "chiploc-private-key/1"
PUBLIC_KEY_FORMAT = "chiploc-public-key/1"

_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SEED_BYTES = 32
_PUBLIC_KEY_BYTES = 32
_SIGNATURE_BYTES = 64


class Role(enum.Enum):
    """What an identity is allowed to sign."""

    CHIP = "chip"
    LANDMARK = "landmark"
    VERIFIER = "verifier"
    AUTHORITY = "authority"


def validate_id(identity: str, *, what: str = "id") -> str:
    """Return ``identity`` if it is 1-64 chars of ``[A-Za-z0-9._-]``; else raise ValueError."""
    if not isinstance(identity, str) or _ID_RE.fullmatch(identity) is None:
        raise ValueError(f"{what} must be 1-64 characters of [A-Za-z0-9._-], got {identity!r}")
    return identity


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Check a detached Ed25519 signature; raise :class:`BadSignature` if it fails."""
    if len(signature) != _SIGNATURE_BYTES or len(public_key) != _PUBLIC_KEY_BYTES:
        raise BadSignature("signature or public key has the wrong length")
    try:
        _nacl.crypto_sign_open(signature + message, public_key)
    except Exception as e:  # nacl raises BadSignatureError / ValueError / RuntimeError
        raise BadSignature("Ed25519 signature does not verify") from e


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicKey:
    """An identity's public half: ``role``, ``id`` and 32 raw Ed25519 bytes."""

    role: Role
    id: str
    key_bytes: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            raise ValueError(f"role must be a Role, got {self.role!r}")
        validate_id(self.id)
        if not isinstance(self.key_bytes, bytes) or len(self.key_bytes) != _PUBLIC_KEY_BYTES:
            raise ValueError("public key must be 32 bytes")

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise :class:`BadSignature` unless ``signature`` is ours over ``message``."""
        verify_signature(self.key_bytes, message, signature)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": PUBLIC_KEY_FORMAT,
            "role": self.role.value,
            "id": self.id,
            "public_key": self.key_bytes.hex(),
        }

    @classmethod
    def from_json_dict(cls, obj: Any) -> PublicKey:
        if not isinstance(obj, dict) or obj.get("format") != PUBLIC_KEY_FORMAT:
            raise ValueError(f"not a {PUBLIC_KEY_FORMAT} object")
        return cls(
            role=Role(obj["role"]),
            id=obj["id"],
            key_bytes=_hex(obj["public_key"], _PUBLIC_KEY_BYTES),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivateKey:
    """An identity's Ed25519 signing key (a 32-byte seed). ``repr`` never shows the seed."""

    role: Role
    id: str
    seed: bytes = field(repr=False)
    _secret: bytes = field(init=False, repr=False, compare=False)
    _public: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            raise ValueError(f"role must be a Role, got {self.role!r}")
        validate_id(self.id)
        if not isinstance(self.seed, bytes) or len(self.seed) != _SEED_BYTES:
            raise ValueError("private key seed must be 32 bytes")
        public, secret = _nacl.crypto_sign_seed_keypair(self.seed)
        object.__setattr__(self, "_secret", secret)
        object.__setattr__(self, "_public", public)

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(role=self.role, id=self.id, key_bytes=self._public)

    @property
    def secret_key_bytes(self) -> bytes:
        """The 64-byte libsodium secret key, for hot paths that call libsodium directly."""
        return self._secret

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached Ed25519 signature of ``message``."""
        return _nacl.crypto_sign(message, self._secret)[:_SIGNATURE_BYTES]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": PRIVATE_KEY_FORMAT,
            "role": self.role.value,
            "id": self.id,
            "seed": self.seed.hex(),
        }

    @classmethod
    def from_json_dict(cls, obj: Any) -> PrivateKey:
        if not isinstance(obj, dict) or obj.get("format") != PRIVATE_KEY_FORMAT:
            raise ValueError(f"not a {PRIVATE_KEY_FORMAT} object")
        return cls(role=Role(obj["role"]), id=obj["id"], seed=_hex(obj["seed"], _SEED_BYTES))


def _hex(value: Any, length: int) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected a hex string")
    raw = bytes.fromhex(value)
    if len(raw) != length:
        raise ValueError(f"expected {length} bytes of hex, got {len(raw)}")
    return raw


def generate_private_key(role: Role, id: str, *, seed: bytes | None = None) -> PrivateKey:
    """A new key for ``role``/``id``; ``seed`` (32 bytes) makes it deterministic (tests only)."""
    if seed is None:
        seed = os.urandom(_SEED_BYTES)
    try:
        return PrivateKey(role=role, id=id, seed=seed)
    except ValueError as e:
        raise LocalProtocolError(str(e), reason="bad_key") from e


def write_keypair(key: PrivateKey, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``<id>.key`` (mode 0600, never overwritten) and ``<id>.pub`` into ``out_dir``."""
    directory = Path(out_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KeyFileError(f"{directory}: cannot create directory: {e.strerror}") from e
    private_path = directory / f"{key.id}.key"
    public_path = directory / f"{key.id}.pub"
    private_text = json.dumps(key.to_json_dict(), indent=2) + "\n"
    public_text = json.dumps(key.public_key.to_json_dict(), indent=2) + "\n"
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise KeyFileError(f"{private_path}: already exists; refusing to overwrite a key") from e
    except OSError as e:
        raise KeyFileError(f"{private_path}: cannot create: {e.strerror}") from e
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # in case the umask widened nothing but a racer chmodded
        f.write(private_text)
    try:
        public_path.write_text(public_text, encoding="utf-8")
    except OSError as e:
        raise KeyFileError(f"{public_path}: cannot write: {e.strerror}") from e
    return private_path, public_path


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise KeyFileError(f"{path}: no such key file", reason="missing_key_file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise KeyFileError(f"{path}: cannot read key file: {e}") from e
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise KeyFileError(f"{path}: not a JSON key file: {e}") from e


def load_private_key(
    path: str | os.PathLike[str], *, role: Role | None = None, id: str | None = None
) -> PrivateKey:
    """Load a private key file; refuse it if group/world-accessible or of the wrong role/id."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError as e:
        raise KeyFileError(f"{p}: no such key file", reason="missing_key_file") from e
    except OSError as e:
        raise KeyFileError(f"{p}: cannot stat key file: {e.strerror}") from e
    obj = _read_json(p)
    if isinstance(obj, dict) and obj.get("format") == PUBLIC_KEY_FORMAT:
        raise KeyFileError(
            f"{p}: this is a PUBLIC key file ({PUBLIC_KEY_FORMAT}); a PRIVATE key file "
            f"({PRIVATE_KEY_FORMAT}, the .key written beside the .pub) is needed here",
            reason="public_key_given",
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{p}: private key is accessible by group/others (mode {stat.S_IMODE(mode):04o});"
            f" run chmod 600 {p}",
            reason="key_file_permissions",
        )
    try:
        key = PrivateKey.from_json_dict(obj)
    except (ValueError, KeyError, TypeError) as e:
        raise KeyFileError(f"{p}: malformed private key file: {e}") from e
    _check_expected(p, key.role, key.id, role, id)
    return key


def load_public_key(
    path: str | os.PathLike[str], *, role: Role | None = None, id: str | None = None
) -> PublicKey:
    """Load a ``.pub`` file; a private ``.key`` file is refused (reason ``private_key_given``)."""
    p = Path(path)
    obj = _read_json(p)
    if isinstance(obj, dict) and obj.get("format") == PRIVATE_KEY_FORMAT:
        raise KeyFileError(
            f"{p}: this is a PRIVATE key file ({PRIVATE_KEY_FORMAT}); a PUBLIC key file "
            f"({PUBLIC_KEY_FORMAT}, the .pub written beside it) is expected here - never "
            "hand out or pin the private key",
            reason="private_key_given",
        )
    try:
        key = PublicKey.from_json_dict(obj)
    except (ValueError, KeyError, TypeError) as e:
        raise KeyFileError(f"{p}: malformed public key file: {e}") from e
    _check_expected(p, key.role, key.id, role, id)
    return key


def _check_expected(
    path: Path, got_role: Role, got_id: str, role: Role | None, id: str | None
) -> None:
    if role is not None and got_role is not role:
        raise KeyFileError(
            f"{path}: key is for role {got_role.value!r}, expected {role.value!r}",
            reason="wrong_key_role",
        )
    if id is not None and got_id != id:
        raise KeyFileError(
            f"{path}: key is for id {got_id!r}, expected {id!r}", reason="wrong_key_id"
        )
