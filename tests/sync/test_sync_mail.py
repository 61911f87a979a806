"""The digest by SMTP against a real relay on loopback (aiosmtpd): STARTTLS, implicit TLS and
login as a bank's relay asks for them, and every way it fails as one short line that never
holds the password."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectors.sandbox.tls import make_ca_and_server, server_context
from sync import notify

BODY = {"source": "salesforce", "run_id": "01TESTRUN", "new_refusals": 2,
        "refused_by_reason": {"pep": 2}, "refusals": [], "write_failures_total": 0,
        "write_failures": []}
POLICY = SimpleNamespace(raw={"review": {"notify": [
    {"kind": "email", "to": ["ops-admin@example.com"]}]}})
PASSWORD = "s3cr3t-Pass"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


def _login(server: Any, session: Any, envelope: Any, mechanism: str,
           auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"leadgate" \
        and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def relay(folder: Path, mode: str, *, login: bool = False) -> Iterator[tuple[Inbox, int, Path]]:
    """A relay on 127.0.0.1: mode plain | starttls | ssl; yields (inbox, port, its CA file)."""
    ca, cert, key = make_ca_and_server(folder)
    inbox, port = Inbox(), _free_port()
    options: dict[str, Any] = {}
    if mode == "starttls":
        options.update(tls_context=server_context(cert, key), require_starttls=True)
    if login:
        # aiosmtpd counts only STARTTLS as TLS for its AUTH check: an implicit TLS session is
        # encrypted all the same
        options.update(authenticator=_login, auth_required=True,
                       auth_require_tls=mode == "starttls")
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            ssl_context=server_context(cert, key) if mode == "ssl" else None,
                            **options)
    controller.start()
    try:
        yield inbox, port, ca
    finally:
        controller.stop()


def _env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name in ("HOST", "PORT", "TLS", "USER", "PASSWORD", "CA_FILE"):
        monkeypatch.delenv(f"LEADGATE_SMTP_{name}", raising=False)
    for name, value in values.items():
        monkeypatch.setenv(f"LEADGATE_SMTP_{name.upper()}", value)


def _send(tmp_path: Path) -> tuple[list[str], list[str]]:
    sent, problems = notify.send(POLICY, BODY, outbox=tmp_path / "outbox")
    assert not (tmp_path / "outbox").exists()  # SMTP configured: never the outbox instead
    assert not any(PASSWORD in p for p in problems)
    return sent, problems


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_the_digest_goes_over_tls_with_a_login(tmp_path: Path, mode: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with relay(tmp_path, mode, login=True) as (inbox, port, ca):
        _env(monkeypatch, host="127.0.0.1", port=str(port), tls=mode, user="leadgate",
             password=PASSWORD, ca_file=str(ca))
        sent, problems = _send(tmp_path)
        assert (sent, problems) == ([f"email via 127.0.0.1:{port}"], [])
        assert len(inbox.messages) == 1
        envelope = inbox.messages[0]
        assert envelope.rcpt_tos == ["ops-admin@example.com"]
        message = message_from_bytes(envelope.original_content)
        assert message["Subject"].startswith("leadgate: 2 new refusals")
        assert parsedate_to_datetime(message["Date"]).tzinfo is not None
        assert re.fullmatch(r"<[^@\s]+@localhost>", message["Message-ID"])


def test_each_failure_is_one_short_reason(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with relay(tmp_path, "starttls", login=True) as (inbox, port, ca):
        base = {"host": "127.0.0.1", "port": str(port), "user": "leadgate", "ca_file": str(ca)}
        _env(monkeypatch, **base, tls="starttls", password="wrong")
        assert _send(tmp_path)[1] == [
            f"email via 127.0.0.1:{port}: the relay refused the login (check "
            "LEADGATE_SMTP_USER and LEADGATE_SMTP_PASSWORD)"]
        _env(monkeypatch, **{**base, "ca_file": ""}, tls="starttls", password=PASSWORD)
        assert _send(tmp_path)[1] == [
            f"email via 127.0.0.1:{port}: TLS failed (check the relay's certificate; "
            "LEADGATE_SMTP_CA_FILE names a private CA)"]
        assert inbox.messages == []
    with relay(tmp_path, "plain") as (inbox, port, ca):
        _env(monkeypatch, host="127.0.0.1", port=str(port), tls="starttls", ca_file=str(ca))
        assert _send(tmp_path)[1] == [
            f"email via 127.0.0.1:{port}: the relay does not offer STARTTLS"]
        _env(monkeypatch, host="127.0.0.1", port=str(port))  # a plain relay on this machine
        assert _send(tmp_path) == ([f"email via 127.0.0.1:{port}"], [])
        assert len(inbox.messages) == 1
    closed = _free_port()
    _env(monkeypatch, host="127.0.0.1", port=str(closed))
    assert _send(tmp_path)[1] == [
        f"email via 127.0.0.1:{closed}: cannot connect (Connection refused)"]


def test_settings_that_cannot_work_are_refused_before_connecting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # relay.example.invalid never resolves: each of these stops before any connection
    cases = [
        ({"port": "587x"}, "LEADGATE_SMTP_PORT '587x' is not a port number"),
        ({"tls": "yes"}, "LEADGATE_SMTP_TLS 'yes' is not one of starttls, ssl, none"),
        ({"user": "leadgate"}, "LEADGATE_SMTP_USER is set but LEADGATE_SMTP_PASSWORD is not"),
        ({"port": "25", "user": "leadgate", "password": PASSWORD},
         "will not send the SMTP password unencrypted (set LEADGATE_SMTP_TLS=starttls or ssl)"),
    ]
    for values, reason in cases:
        _env(monkeypatch, host="relay.example.invalid", **values)
        assert _send(tmp_path)[1] == [f"email via SMTP: {reason}"], values
