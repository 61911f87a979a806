"""A notify target that cannot be reached is one short line naming its host (never the rest of
its URL, which may be its secret) and never fails the run."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from sync import notify

BODY = {"source": "salesforce", "run_id": "01TEST", "new_refusals": 0,
        "write_failures_total": 0}


def _closed_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_webhook_is_named_by_host_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_TEST_HOOK_URL", "hooks.example.com/s3cr3tXYZ")  # no scheme
    port = _closed_port()
    policy = SimpleNamespace(raw={"review": {"notify": [
        {"kind": "webhook", "url": f"http://127.0.0.1:{port}/hooks/s3cr3tXYZ?k=q5ecretQ"},
        {"kind": "webhook", "url": "http://127.0.0.1"},
        {"kind": "webhook", "url": "not a url s3cr3tXYZ"},
        {"kind": "webhook", "url": {"env": "LG_TEST_HOOK_URL"}}]}})
    sent, problems = notify.send(policy, BODY)
    assert sent == []
    assert problems[0] == (f"webhook http://127.0.0.1:{port}/…: cannot connect (check its host "
                           "name, the network and any proxy)")
    assert problems[1].startswith("webhook http://127.0.0.1: cannot connect")  # no path: no …
    assert problems[2:] == [
        "webhook (not an http(s) URL): not an http:// or https:// URL with a host",
        "webhook $LG_TEST_HOOK_URL: not an http:// or https:// URL with a host"]
    assert not any("s3cr3tXYZ" in p or "q5ecretQ" in p for p in problems)


def test_a_plain_http_webhook_from_the_environment_to_a_remote_host_is_not_posted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the policy loader never sees an {env:} URL: it is checked where it is read
    monkeypatch.setenv("LG_TEST_HOOK_URL", "http://hooks.example.com/T1/s3cr3tXYZ")
    posted: list[str] = []
    monkeypatch.setattr(notify.requests, "post", lambda url, **_: posted.append(url))
    policy = SimpleNamespace(raw={"review": {"notify": [
        {"kind": "webhook", "url": {"env": "LG_TEST_HOOK_URL"}}]}})
    sent, problems = notify.send(policy, BODY)
    assert (sent, posted) == ([], [])
    assert problems == ["webhook $LG_TEST_HOOK_URL: plain http:// to a host that is not loopback "
                        "(use https://; plain http:// is accepted only for 127.0.0.1, ::1 or "
                        "localhost)"]
