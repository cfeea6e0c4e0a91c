"""Each bad input is one clear `error: ...` line from the CLI, at load time where it is
configuration, never `unexpected ...`. Run through `bot.cli.main`, as the
installed `promotion-bot` runs; `serve` in a subprocess, since a server that starts never returns.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_main

ROOT = Path(__file__).resolve().parent.parent


def one_error_line(code: int, err: str, *expected: str) -> str:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "unexpected" not in err and "Traceback" not in err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(autouse=True)
def _local_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMOTION_BOT_PLATFORM", "local")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.mark.parametrize("thread", ["²", "#²", "3a", "1.5", "#", ""])
def test_comment_on_a_thread_number_that_is_not_an_ascii_integer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], thread: str
) -> None:
    code, _, err = run_main(monkeypatch, capsys, "comment", thread, "/promote", "--as", "dana")
    one_error_line(code, err, f"THREAD must be an issue number such as 3 or #3, got {thread!r}")


def test_a_params_file_that_is_not_utf8_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "params.yaml").write_bytes(b"register_model:\n  model_name: caf\xe9\n")
    code, _, err = run_main(monkeypatch, capsys, "history")
    one_error_line(code, err, "error: params.yaml: not UTF-8 text (byte 0xe9 on line 2)")
    (tmp_path / "other.yaml").write_bytes(b"\xff\xfe")
    code, _, err = run_main(monkeypatch, capsys, "--params", "other.yaml", "history")
    one_error_line(code, err, "error: other.yaml: not UTF-8 text")


def test_a_lock_dir_that_is_a_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "locks").write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("PROMOTION_BOT_LOCK_DIR", str(tmp_path / "locks"))
    code, _, err = run_main(monkeypatch, capsys, "history")
    one_error_line(code, err, f"PROMOTION_BOT_LOCK_DIR: {tmp_path / 'locks'} is a file")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("::::", "error: tracking URI: '::::' is no registry URI MLflow 3 opens"),
        ("ftp://x/y", "error: tracking URI: 'ftp://x/y': MLflow has no model registry for 'ftp'"),
        ("http://:5000", "is not an http(s) URL with a host"),
    ],
)
def test_a_tracking_uri_mlflow_cannot_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], uri: str, expected: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, _, err = run_main(monkeypatch, capsys, "status")
    one_error_line(code, err, expected)
    code, _, err = run_main(monkeypatch, capsys, "history", "--tracking-uri", uri)  # the option too
    one_error_line(code, err, expected)


@pytest.mark.parametrize("command", ["status", "history"])
def test_a_sqlite_registry_in_a_missing_folder_is_not_created(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///nowhere/mlflow.db")
    code, out, err = run_main(monkeypatch, capsys, command)
    one_error_line(code, err, "error: tracking URI: 'sqlite:///nowhere/mlflow.db': the folder")
    assert "no champion changes" not in out
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ('register_model:\n  model_name: "it\'s"\n', 'register_model.model_name: "it\'s"'),
        ("register_model:\n  model_name: 'm\\'\n", "trailing \\"),
        ("promotion:\n  post_promote_hook: ftp://hooks/x\n", "promotion.post_promote_hook:"),
        ("promotion:\n  post_promote_hook: hooks.example.com\n", "not an http(s) URL"),
        ("promotion:\n  request:\n    record_path: ../x.json\n", "promotion.request.record_path:"),
        ("promotion:\n  request:\n    record_path: /etc/x.json\n", "inside the repository"),
        ("promote_model:\n  tolerance: .nan\n", "promote_model.tolerance:"),
        ("promote_model:\n  tolerance: .inf\n", "promote_model.tolerance:"),
        (
            "promotion:\n  gates:\n    thresholds: {final.logloss: {max: .inf}}\n",
            "promotion.gates.thresholds.final.logloss.max:",
        ),
        (
            "promotion:\n  gates:\n    max_regression_vs_champion: .inf\n",
            "promotion.gates.max_regression_vs_champion:",
        ),
        ("promotion:\n  approvers:\n    min_role: None\n", "promotion.approvers.min_role:"),
        ("promotion:\n  approvers:\n    min_role: none\n", "unknown role 'none'"),
    ],
)
def test_configuration_values_that_would_fail_later(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    params: str,
    expected: str,
) -> None:
    (tmp_path / "params.yaml").write_text(params, encoding="utf-8")
    code, _, err = run_main(monkeypatch, capsys, "history")
    one_error_line(code, err, "error: params.yaml: ", expected)


# --- serve: nothing printed as "serving" before the bind failed ---------------------------------


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PROMOTION_BOT_PLATFORM": "local",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a server that did start would be killed here and fail the test
    )


@pytest.mark.slow  # a process creating an embedded registry before it binds
@pytest.mark.mlflow
def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve(tmp_path, "--port", str(port))
    one_error_line(done.returncode, done.stderr, f"cannot listen on http://127.0.0.1:{port}")
    assert "in use" in done.stderr
    assert "serving" not in done.stdout


@pytest.mark.slow
@pytest.mark.mlflow
@pytest.mark.parametrize("host", ["no-such-host.invalid", "999.1.1.1", "127.0.0.1; rm"])
def test_serve_on_an_invalid_host(tmp_path: Path, host: str) -> None:
    done = serve(tmp_path, "--host", host, "--port", "0")
    one_error_line(done.returncode, done.stderr, f"--host {host!r}: not a host name or address")
    assert "serving" not in done.stdout


def test_the_local_forge_reads_no_thread_number_int_cannot_parse(tmp_path: Path) -> None:
    from bot.errors import ForgeNotFoundError
    from bot.forges.local import LocalForge

    with pytest.raises(ForgeNotFoundError, match="no thread #²"):
        LocalForge(tmp_path / "forge").get_thread("issue", "²")
