"""The signing key (bot/signing.py, docs/security.md): keys read from the environment and from
params.yaml, canonical records, seals that hold only for the record as signed, `keygen`, and no
command that writes records on a forge without a key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.cli import cli
from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.errors import ConfigError
from bot.signing import (
    KEY_VARIABLE,
    NOT_SIGNED,
    Keys,
    canonical,
    digest,
    key_id,
    local_key,
    private_key,
    public_key,
    public_text,
)
from tests.helpers import TEST_SIGNING_KEY

RECORD = {"to": 2, "from": 1, "actor": "maria", "reason": "Zürich 🚀", "approvers": [{"u": "a"}]}


def test_canonical_is_one_spelling_of_a_record() -> None:
    assert canonical(RECORD) == canonical(dict(reversed(list(RECORD.items()))))
    assert canonical({"b": 1, "a": "é"}) == b'{"a":"\\u00e9","b":1}'
    assert digest(RECORD) == digest(dict(RECORD)) != digest({**RECORD, "to": 3})


def test_a_seal_holds_for_the_record_as_signed_only() -> None:
    keys = Keys.load(TEST_SIGNING_KEY)
    signed = keys.signed(RECORD)
    assert set(signed) == {*RECORD, "kid", "sig"} and signed["kid"] == keys.own
    assert keys.opened(signed) == (RECORD, "")
    assert "does not match" in keys.opened({**signed, "to": 3})[1]
    assert "does not match" in keys.opened({**signed, "extra": "x"})[1]
    assert "does not match" in keys.opened({**signed, "sig": "bm90IGEgc2ln"})[1]
    assert "does not match" in keys.opened({**signed, "sig": "%%%"})[1]
    assert keys.opened(RECORD)[1] == NOT_SIGNED


def test_only_trusted_keys_count() -> None:
    other = Ed25519PrivateKey.generate()
    stranger = Keys(other)
    forged = stranger.signed(RECORD)
    mine = Keys.load(TEST_SIGNING_KEY)
    assert "not trusted" in mine.opened(forged)[1]
    # Listed in params.yaml (base64 or hex): trusted, though the bot holds only its own key.
    for text in (public_text(other.public_key()), _hex_public(other)):
        auditor = Keys.load("", [text])
        assert not auditor.can_sign and auditor.opened(forged)[1] == ""
        assert key_id(other.public_key()) in auditor.trusted


def test_a_pem_and_a_hex_seed_are_the_same_key() -> None:
    key = private_key(TEST_SIGNING_KEY)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert Keys.load(pem).own == Keys.load(TEST_SIGNING_KEY).own
    assert Keys.load(pem.replace("\n", "\\n")).own == Keys.load(TEST_SIGNING_KEY).own  # one line


@pytest.mark.parametrize(
    "value",
    [
        "0123456789abcdef" * 3,  # too short
        "zz" * 32,  # not hex
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXZhbHVl\n-----END PRIVATE KEY-----",
    ],
)
def test_a_bad_key_is_one_line_naming_the_variable_never_the_value(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(signing_key=Secret(value)).validated({})
    message = str(caught.value)
    assert message.startswith(f"{KEY_VARIABLE}: ") and "\n" not in message
    assert value not in message and "c2VjcmV0" not in message


def test_an_rsa_pem_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ConfigError, match=f"^{KEY_VARIABLE}: not an Ed25519 key"):
        private_key(pem)


def test_trusted_keys_are_checked_with_params_yaml() -> None:
    good = public_text(private_key(TEST_SIGNING_KEY).public_key())
    params = parse_params({"promotion": {"trusted_keys": [f" {good} "]}}, "params.yaml")
    assert params.promotion.trusted_keys == (good,)
    with pytest.raises(ConfigError) as caught:
        parse_params({"promotion": {"trusted_keys": ["not-a-key"]}}, "params.yaml")
    assert "promotion.trusted_keys" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ValueError):
        public_key("AAAA")


def test_the_local_platform_makes_its_key_once_readable_by_its_owner(tmp_path: Path) -> None:
    first = local_key(tmp_path / "forge")
    assert local_key(tmp_path / "forge") == first
    assert Keys.load(first).can_sign
    mode = stat.S_IMODE((tmp_path / "forge" / "signing-key").stat().st_mode)
    assert mode == 0o600


def test_keygen_prints_a_private_key_and_the_line_for_params_yaml() -> None:
    result = CliRunner().invoke(cli, ["keygen"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    seed = lines[1]
    key = Keys.load(seed)
    public_line = lines[3]
    assert public_line.startswith("- ") and public_line.endswith(f"# key id {key.own}")
    listed = public_line[2:].split("  #")[0]
    assert key_id(public_key(listed)) == key.own
    assert KEY_VARIABLE in lines[0] and "promotion.trusted_keys" in lines[2]
    assert CliRunner().invoke(cli, ["keygen"]).output != result.output  # a new key each time


@pytest.mark.parametrize("command", ["serve", "poll", "handle", "register", "gate", "request"])
def test_no_command_writes_on_a_forge_without_the_key(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    args = {"handle": ["--event-name", "Note Hook", "--event-file", "e.json"]}.get(command, [])
    env = {
        "PROMOTION_BOT_PLATFORM": "gitlab",
        "GITLAB_PROJECT": "1",
        "GITLAB_TOKEN": "t",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",  # all else given: only the key lacks
    }
    result = CliRunner().invoke(cli, [command, *args], env=env)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {KEY_VARIABLE}: not set")


def test_verify_needs_no_key_and_the_local_platform_makes_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    assert Settings(platform="gitlab").with_overrides().signing_key.value == ""
    Settings(platform="local").require_signing_key()  # no error: it makes its own
    with pytest.raises(ConfigError, match=f"^{KEY_VARIABLE}: not set"):
        Settings(platform="github").require_signing_key()
    with pytest.raises(ConfigError, match=f"^{KEY_VARIABLE}: not set"):
        Keys.load("").seal(RECORD)


def _hex_public(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()
