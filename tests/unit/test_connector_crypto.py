"""Tokens at rest: AES-256-GCM bound to its row, keys that rotate, errors that leak nothing."""

import base64
import uuid
from collections.abc import Callable

import pytest

from services.connector.adapters.crypto import (
    DEV_TOKEN_KEYS,
    PLACEHOLDER_KEYS,
    Keyring,
    TokenCipher,
    TokenDecryptionFailed,
    is_placeholder,
)
from services.connector.config import ConnectorSettings
from shared.errors import PermanentError

PLAINTEXT = b'{"access_token": "at-123", "refresh_token": "rt-456"}'
ROW = uuid.UUID("0b7d3c1e-5a4f-4e2b-9c1d-7f3e2a1b0c9d").bytes
OTHER_ROW = uuid.UUID("6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9").bytes


def _key(fill: int) -> str:
    return base64.urlsafe_b64encode(bytes([fill]) * 32).rstrip(b"=").decode()


def _cipher(spec: str) -> TokenCipher:
    return TokenCipher(Keyring.parse(spec))


def test_round_trip_and_format() -> None:
    cipher = _cipher(f"k1:{_key(1)}")
    blob = cipher.encrypt(PLAINTEXT, associated_data=ROW)
    assert blob.startswith(b"v1.k1.")
    assert b"at-123" not in blob
    assert blob.isascii()
    assert cipher.decrypt(blob, associated_data=ROW) == PLAINTEXT


def test_each_encryption_uses_a_fresh_nonce() -> None:
    cipher = _cipher(f"k1:{_key(1)}")
    first = cipher.encrypt(PLAINTEXT, associated_data=ROW)
    assert first != cipher.encrypt(PLAINTEXT, associated_data=ROW)


def test_a_blob_moved_to_another_row_does_not_decrypt() -> None:
    cipher = _cipher(f"k1:{_key(1)}")
    blob = cipher.encrypt(PLAINTEXT, associated_data=ROW)
    with pytest.raises(TokenDecryptionFailed) as refused:
        cipher.decrypt(blob, associated_data=OTHER_ROW)
    assert isinstance(refused.value, PermanentError)
    assert refused.value.__cause__ is None


def test_associated_data_is_required() -> None:
    cipher = _cipher(f"k1:{_key(1)}")
    with pytest.raises(ValueError, match="associated_data"):
        cipher.encrypt(PLAINTEXT, associated_data=b"")
    with pytest.raises(ValueError, match="associated_data"):
        cipher.decrypt(b"v1.k1.AAAA", associated_data=b"")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda blob: blob[:-2] + (b"A" if blob[-2:-1] != b"A" else b"B") + blob[-1:],
        lambda blob: blob[:10] + (b"A" if blob[10:11] != b"A" else b"B") + blob[11:],
        lambda blob: blob.replace(b"v1.", b"v2.", 1),
        lambda blob: blob.replace(b"v1.k1.", b"v1.", 1),
        lambda blob: blob + b".extra",
        lambda blob: blob[:20],
        lambda _blob: b"v1.k1.not*base64",
        lambda _blob: b"\xff\xfe",
        lambda _blob: b"",
    ],
    ids=[
        "ciphertext-bit",
        "nonce-bit",
        "version",
        "no-kid",
        "extra-part",
        "truncated",
        "bad-base64",
        "not-ascii",
        "empty",
    ],
)
def test_tampered_blobs_are_refused(tamper: Callable[[bytes], bytes]) -> None:
    cipher = _cipher(f"k1:{_key(1)}")
    blob = cipher.encrypt(PLAINTEXT, associated_data=ROW)
    with pytest.raises(TokenDecryptionFailed) as refused:
        cipher.decrypt(tamper(blob), associated_data=ROW)
    assert "at-123" not in str(refused.value)


def test_a_blob_relabelled_with_another_kid_is_refused() -> None:
    cipher = _cipher(f"k2:{_key(2)},k1:{_key(1)}")
    blob = TokenCipher(Keyring.parse(f"k1:{_key(1)}")).encrypt(PLAINTEXT, associated_data=ROW)
    with pytest.raises(TokenDecryptionFailed):
        cipher.decrypt(blob.replace(b"v1.k1.", b"v1.k2.", 1), associated_data=ROW)


def test_rotation_old_keys_decrypt_the_current_one_encrypts() -> None:
    old = _cipher(f"k1:{_key(1)}")
    sealed_before = old.encrypt(PLAINTEXT, associated_data=ROW)
    rotated = _cipher(f"k2:{_key(2)},k1:{_key(1)}")

    assert rotated.decrypt(sealed_before, associated_data=ROW) == PLAINTEXT
    assert rotated.needs_rotation(sealed_before)
    assert not old.needs_rotation(sealed_before)

    sealed_after = rotated.encrypt(PLAINTEXT, associated_data=ROW)
    assert sealed_after.startswith(b"v1.k2.")
    assert not rotated.needs_rotation(sealed_after)

    resealed = rotated.reencrypt(sealed_before, associated_data=ROW)
    assert resealed.startswith(b"v1.k2.")
    assert rotated.decrypt(resealed, associated_data=ROW) == PLAINTEXT


def test_a_retired_key_is_named_but_not_shown() -> None:
    blob = _cipher(f"k1:{_key(1)}").encrypt(PLAINTEXT, associated_data=ROW)
    with pytest.raises(TokenDecryptionFailed, match="'k1'") as refused:
        _cipher(f"k2:{_key(2)}").decrypt(blob, associated_data=ROW)
    assert _key(1) not in str(refused.value)
    assert _key(2) not in str(refused.value)


def test_keyring_parse() -> None:
    keyring = Keyring.parse(f" k2 : {_key(2)} , old_1-x:{_key(1)}")
    assert keyring.current_kid == "k2"
    assert keyring.kids == ("k2", "old_1-x")
    assert keyring.key("old_1-x") == bytes([1]) * 32
    assert keyring.key("missing") is None
    assert _key(1) not in repr(keyring)
    assert "k2" in repr(keyring)


def test_standard_base64_with_padding_is_accepted() -> None:
    standard = base64.b64encode(bytes([0xFB]) * 32).decode()
    assert "/" in standard
    assert standard.endswith("=")
    assert Keyring.parse(f"k1:{standard}").key("k1") == bytes([0xFB]) * 32


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no token keys"),
        (" , ", "no token keys"),
        (_key(1), "#1: expected kid:base64url-key"),
        (f":{_key(1)}", "#1: expected kid:base64url-key"),
        ("k1:", "#1: expected kid:base64url-key"),
        (f"{_key(1)}:k1", "#1: the key id must be"),
        (f"bad kid:{_key(1)}", "#1: the key id must be"),
        (f"k1:{_key(1)},k.2:{_key(2)}", "#2: the key id must be"),
        (f"{'k' * 33}:{_key(1)}", "#1: the key id must be"),
        (f"k1:{_key(1)},k1:{_key(2)}", "#2: key id 'k1' is used twice"),
        (f"k1:{_key(1)}*", "'k1': the key is not valid base64url"),
        (f"k1:{_key(1)[:-1]}=x", "'k1': the key is not valid base64url"),
        ("k1:" + base64.urlsafe_b64encode(b"s" * 16).decode(), "32 bytes, not 16"),
        ("k1:" + base64.urlsafe_b64encode(b"s" * 33).decode(), "32 bytes, not 33"),
    ],
)
def test_bad_specs_say_what_is_wrong_without_key_material(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        Keyring.parse(spec)
    text = str(refused.value)
    for key in (_key(1), _key(2), base64.urlsafe_b64encode(b"s" * 16).decode()[:12]):
        assert key not in text
    assert refused.value.__cause__ is None


def test_generate_spec() -> None:
    spec = Keyring.generate_spec("k7")
    keyring = Keyring.parse(spec)
    assert keyring.current_kid == "k7"
    assert Keyring.parse(Keyring.generate_spec()).current_kid == "k1"
    assert spec != Keyring.generate_spec("k7")
    assert not is_placeholder(spec)
    with pytest.raises(ValueError, match="key ids"):
        Keyring.generate_spec("no good")


def test_the_dev_default_parses_and_is_a_placeholder() -> None:
    assert Keyring.parse(DEV_TOKEN_KEYS).current_kid == "dev"
    assert is_placeholder(DEV_TOKEN_KEYS)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "change-me",
        "k1:CHANGE-ME",
        *(f"dev:{published}" for published in sorted(PLACEHOLDER_KEYS)),
        # A real key first, a published one after it. Fixed, so every collection of the
        # suite (each pytest-xdist worker's) names the same cases.
        f"k2:{'A' * 43},dev:{sorted(PLACEHOLDER_KEYS)[0]}",
        # The same published key, re-encoded in the standard alphabet with padding.
        "k1:" + base64.b64encode(Keyring.parse(DEV_TOKEN_KEYS).current[1]).decode(),
    ],
)
def test_placeholders_are_recognised(spec: str) -> None:
    assert is_placeholder(spec)


def test_a_real_key_is_not_a_placeholder() -> None:
    assert not is_placeholder(f"k1:{_key(9)}")
    assert not is_placeholder("not a spec at all")


def test_the_settings_default_is_the_published_dev_key() -> None:
    default = ConnectorSettings.model_fields["token_keys"].default
    assert default.get_secret_value() == DEV_TOKEN_KEYS
    assert is_placeholder(default.get_secret_value())
