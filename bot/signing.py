"""The bot's signing key: every record it relies on later is signed with it (docs/security.md).

An Ed25519 private key, held only by the bot's own jobs (PROMOTION_BOT_SIGNING_KEY: PEM, or the
32-byte seed as 64 hex characters). Public keys are no secret: params.yaml lists the ones the
repository trusts (`promotion.trusted_keys`), so `verify` needs none. A record is signed over its
canonical JSON (sorted keys, no spaces, ASCII only), and a signature names its key by a short id:
the first 16 hex characters of the SHA-256 of the raw public key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.errors import ConfigError

KEY_VARIABLE = "PROMOTION_BOT_SIGNING_KEY"
TRUSTED_KEYS = "promotion.trusted_keys"
LOCAL_KEY_FILE = "signing-key"  # in the local platform's folder: demo and `--platform local`
KID, SIG = "kid", "sig"  # the two fields a signed record carries beside its own
NOT_SIGNED = "not signed by the bot"
UNTRUSTED = "signed by a key that is not trusted"  # followed by the key's id


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a record is signed over: one spelling of any JSON value."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digest(record: Mapping[str, Any]) -> str:
    """The SHA-256 of a record's canonical form, hex: the link of a chain."""
    return hashlib.sha256(canonical(record)).hexdigest()


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def private_key(text: str, variable: str = KEY_VARIABLE) -> Ed25519PrivateKey:
    """The key of PROMOTION_BOT_SIGNING_KEY; a bad value is a ConfigError that names the
    variable and never quotes the value."""
    text = text.strip().replace("\\n", "\n")  # a PEM in a one-line CI variable
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            raise ConfigError(f"{variable}: not a readable PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{variable}: not an Ed25519 key (`promotion-bot keygen` makes one)")
        return key
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ConfigError(
            f"{variable}: neither a PEM private key nor 64 hex characters "
            "(`promotion-bot keygen` makes one)"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(text: str) -> Ed25519PublicKey:
    """A trusted public key as params.yaml lists it: the raw 32 bytes in base64 or hex."""
    value = text.strip()
    raw = b""
    with contextlib.suppress(ValueError, binascii.Error):
        raw = bytes.fromhex(value) if len(value) == 64 else base64.b64decode(value, validate=True)
    if len(raw) != 32:
        raise ValueError(f"{value[:60]!r} is not an Ed25519 public key (32 bytes, base64 or hex)")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ValueError(f"{value[:60]!r} is not an Ed25519 public key") from None


def public_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw_public(public)).decode("ascii")


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def new_private() -> tuple[str, str, str]:
    """A new key: (private seed as hex, public key as base64, key id)."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return seed.hex(), public_text(key.public_key()), key_id(key.public_key())


def local_key(folder: Path, create: bool = True) -> str:
    """The local platform's own key (demo, `--platform local`): made once, kept in its folder
    readable by its owner only ("" when it has none yet and not `create`)."""
    path = folder / LOCAL_KEY_FILE
    if not path.exists():
        if not create:
            return ""
        folder.mkdir(parents=True, exist_ok=True)
        seed, _public, _kid = new_private()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(seed + "\n")
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{KEY_VARIABLE}: cannot read the local key {path}") from None


class Keys:
    """The bot's own key (None where only checking: `verify` by an auditor) and every public key
    a signature may come from: the trusted ones of params.yaml and the bot's own."""

    def __init__(
        self,
        private: Ed25519PrivateKey | None,
        trusted: Sequence[Ed25519PublicKey] = (),
        make: Callable[[], str] | None = None,
    ) -> None:
        self._private: Ed25519PrivateKey | None = None
        self._make = make  # makes the key at the first signature (the local platform's own)
        self.trusted: dict[str, Ed25519PublicKey] = {key_id(key): key for key in trusted}
        self.own = ""
        if private is not None:
            self._own(private)

    def _own(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.own = key_id(private.public_key())
        self.trusted[self.own] = private.public_key()

    @classmethod
    def load(
        cls,
        private_text: str,
        trusted_texts: Sequence[str] = (),
        make: Callable[[], str] | None = None,
    ) -> Keys:
        private = private_key(private_text) if private_text.strip() else None
        trusted = []
        for text in trusted_texts:
            try:
                trusted.append(public_key(text))
            except ValueError as exc:
                raise ConfigError(f"{TRUSTED_KEYS}: {exc}") from None
        return cls(private, trusted, make)

    @property
    def can_sign(self) -> bool:
        return self._private is not None or self._make is not None

    def seal(self, record: Mapping[str, Any]) -> dict[str, str]:
        """`{kid, sig}` over the record's canonical form (the record holds neither)."""
        if self._private is None and self._make is not None:
            self._own(private_key(self._make()))
        if self._private is None:
            raise ConfigError(
                f"{KEY_VARIABLE}: not set; the bot signs every record it writes "
                '(`promotion-bot keygen`, README "Signing keys")'
            )
        signature = self._private.sign(canonical(record))
        return {KID: self.own, SIG: base64.b64encode(signature).decode("ascii")}

    def signed(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record with its seal beside its fields."""
        return {**record, **self.seal(record)}

    def check(self, record: Mapping[str, Any], kid: object, sig: object) -> str:
        """ "" when `sig` is a signature of the record by a trusted key, else what is wrong."""
        if not kid and not sig:
            return NOT_SIGNED
        public = self.trusted.get(kid) if isinstance(kid, str) else None
        if public is None:
            return f"{UNTRUSTED} ({str(kid)[:20]!r})"
        try:
            public.verify(base64.b64decode(str(sig), validate=True), canonical(record))
        except (InvalidSignature, ValueError, binascii.Error):
            return "its signature does not match (changed after it was signed)"
        return ""

    def opened(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """A signed record's own fields, and "" when its seal holds (else what is wrong)."""
        fields = {key: value for key, value in record.items() if key not in (KID, SIG)}
        return fields, self.check(fields, record.get(KID), record.get(SIG))
