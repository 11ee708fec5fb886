"""OAuth tokens encrypted at rest: AES-256-GCM under a keyring that can rotate.

A sealed blob is ASCII bytes, `v1.<kid>.<base64url(nonce || ciphertext || tag)>` without
padding: the version and key id stay readable so an operator (and `needs_rotation`) can tell
which key sealed a row without decrypting it. The nonce is 96 random bits per encryption;
random nonces are safe for far more encryptions than one key will ever see here (NIST's
bound is 2**32 per key).

The associated data a caller passes (the connection id) is authenticated but not stored, so
a blob copied onto another row does not decrypt. The header is authenticated too.
"""

import base64
import binascii
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.errors import PermanentError

KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
_VERSION = b"v1"
_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Both alphabets: `openssl rand -base64 32` prints the standard one, with padding.
_BASE64 = re.compile(r"[A-Za-z0-9_+/-]+={0,2}")

# Published in this repository (the same default as config.py) so that a development stack
# runs out of the box; production settings refuse any keyring that contains one of them.
DEV_TOKEN_KEYS = "dev:eGVyb3N5bmMtZGV2LWtleS1ub3QtZm9yLXByb2QtMzI"  # noqa: S105
PLACEHOLDER_KEYS: frozenset[str] = frozenset(
    {
        "eGVyb3N5bmMtZGV2LWtleS1ub3QtZm9yLXByb2QtMzI",
        # An earlier development default (35 bytes, so it never parsed); still published.
        "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE",
    }
)


class TokenDecryptionFailed(PermanentError):
    """A sealed token set cannot be opened: altered, moved to another row, or its key is gone.

    The message names no key material and nothing of the plaintext."""


def _b64encode(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _b64decode(text: str) -> bytes:
    """Strict base64 (either alphabet, padding optional); ValueError on anything else."""
    if not _BASE64.fullmatch(text):
        raise ValueError("not base64")
    unpadded = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


class Keyring:
    """Named AES-256 keys; the first encrypts, every one decrypts."""

    __slots__ = ("_current", "_keys")

    def __init__(self, keys: Mapping[str, bytes], *, current: str) -> None:
        if current not in keys:
            raise ValueError("the current key id is not in the keyring")
        for kid, key in keys.items():
            if not _KID.fullmatch(kid):
                raise ValueError("key ids are 1-32 characters of A-Z, a-z, 0-9, '_' or '-'")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {kid!r} must be {KEY_BYTES} bytes, not {len(key)}")
        self._keys: Mapping[str, bytes] = MappingProxyType(dict(keys))
        self._current = current

    @classmethod
    def parse(cls, spec: str) -> Self:
        """Read `kid:base64url-key[,kid:key...]`. Errors name positions and key ids, never
        key material (an entry written the wrong way round would put the key where the id
        goes, so an invalid id is not echoed either)."""
        entries = [entry.strip() for entry in spec.split(",")]
        if not any(entries):
            raise ValueError("no token keys given: expected kid:base64url-key[,kid:key...]")
        keys: dict[str, bytes] = {}
        for position, entry in enumerate(entries, start=1):
            kid, colon, encoded = entry.partition(":")
            kid, encoded = kid.strip(), encoded.strip()
            if not colon or not kid or not encoded:
                raise ValueError(f"token key #{position}: expected kid:base64url-key")
            if not _KID.fullmatch(kid):
                raise ValueError(
                    f"token key #{position}: the key id must be 1-32 characters of "
                    "A-Z, a-z, 0-9, '_' or '-'"
                )
            if kid in keys:
                raise ValueError(f"token key #{position}: key id {kid!r} is used twice")
            try:
                key = _b64decode(encoded)
            except ValueError:
                raise ValueError(
                    f"token key {kid!r}: the key is not valid base64url"
                ) from None  # the decoder's message could quote the input
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"token key {kid!r}: the key must decode to {KEY_BYTES} bytes, not {len(key)}"
                )
            keys[kid] = key
        return cls(keys, current=next(iter(keys)))

    @staticmethod
    def generate_spec(kid: str = "k1") -> str:
        """A fresh random key in spec form, e.g. for `CONNECTOR_TOKEN_KEYS`."""
        if not _KID.fullmatch(kid):
            raise ValueError("key ids are 1-32 characters of A-Z, a-z, 0-9, '_' or '-'")
        return f"{kid}:{_b64encode(os.urandom(KEY_BYTES)).decode()}"

    @property
    def current_kid(self) -> str:
        return self._current

    @property
    def current(self) -> tuple[str, bytes]:
        """The id and key that encrypt."""
        return self._current, self._keys[self._current]

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def key(self, kid: str) -> bytes | None:
        return self._keys.get(kid)

    def __repr__(self) -> str:
        return f"Keyring(current={self._current!r}, kids={self.kids!r})"


def is_placeholder(spec: str) -> bool:
    """Whether a keyring spec is missing or holds a published key (production refuses it)."""
    if not spec.strip() or "change-me" in spec.lower():
        return True
    if any(published in spec for published in PLACEHOLDER_KEYS):
        return True
    try:
        keyring = Keyring.parse(spec)
    except ValueError:
        return False  # not a placeholder; Keyring.parse reports what is wrong with it
    published = {_b64decode(text) for text in PLACEHOLDER_KEYS}
    return any(keyring.key(kid) in published for kid in keyring.kids)


class TokenCipher:
    """Seals and opens token sets; see the module docstring for the format."""

    __slots__ = ("_keyring",)

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        _require_associated_data(associated_data)
        kid, key = self._keyring.current
        header = _header(kid)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext, header + associated_data)
        return header + _b64encode(nonce + sealed)

    def decrypt(self, blob: bytes, *, associated_data: bytes) -> bytes:
        _require_associated_data(associated_data)
        kid, body = _split(blob)
        key = self._keyring.key(kid)
        if key is None:
            raise TokenDecryptionFailed(
                f"stored tokens were sealed with key {kid!r}, which is no longer in "
                "CONNECTOR_TOKEN_KEYS"
            )
        try:
            raw = _b64decode(body)
        except ValueError:
            raise TokenDecryptionFailed("stored tokens are not in a readable format") from None
        if len(raw) < NONCE_BYTES + _TAG_BYTES:
            raise TokenDecryptionFailed("stored tokens are not in a readable format")
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        try:
            return AESGCM(key).decrypt(nonce, sealed, _header(kid) + associated_data)
        except InvalidTag:
            raise TokenDecryptionFailed(
                "stored tokens could not be decrypted: they were altered or belong to "
                "another connection"
            ) from None

    def needs_rotation(self, blob: bytes) -> bool:
        """Whether the blob was sealed with a key other than the current one."""
        kid, _ = _split(blob)
        return kid != self._keyring.current_kid

    def reencrypt(self, blob: bytes, *, associated_data: bytes) -> bytes:
        """The same plaintext sealed again under the current key."""
        plaintext = self.decrypt(blob, associated_data=associated_data)
        return self.encrypt(plaintext, associated_data=associated_data)


def _header(kid: str) -> bytes:
    return _VERSION + b"." + kid.encode("ascii") + b"."


def _split(blob: bytes) -> tuple[str, str]:
    """(kid, base64 body) of a blob; the kid is checked before it is echoed in a message."""
    try:
        version, kid, body = bytes(blob).decode("ascii").split(".")
    except (UnicodeDecodeError, ValueError):
        raise TokenDecryptionFailed("stored tokens are not in a readable format") from None
    if version.encode() != _VERSION or not _KID.fullmatch(kid) or not body:
        raise TokenDecryptionFailed("stored tokens are not in a readable format")
    return kid, body


def _require_associated_data(associated_data: bytes) -> None:
    # Empty associated data would let a blob open on any row: always a caller's mistake.
    if not associated_data:
        raise ValueError("associated_data must bind the ciphertext to its row")
