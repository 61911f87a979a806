"""One digest per run to the policy's `review.notify` targets: new refusals, cooling-off
violations and failed writes, and the open review items of earlier runs that no digest reached
(a run killed before it sent one, a target that was down): a review item counts as notified
only once every target took a digest with it.

The digest carries ids, reasons and counts only (no names, emails or phones): the officer opens
the lead in the CRM or `leadgate review list`. Webhooks are POSTed as JSON with `requests`;
email goes through SMTP when LEADGATE_SMTP_HOST is set (sync/mail.py), otherwise it is written
as an .eml file to the outbox folder (LEADGATE_OUTBOX, default leadgate-outbox/ next to
leadgate.yaml) for the host's mailer.
A target that fails is reported in the run summary; it never fails the run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from audit.files import write_atomically
from routing_core.urls import LOOPBACK_ONLY, is_cleartext_remote, is_http_url
from sync import mail

WEBHOOK_TIMEOUT = 10.0


def targets(policy: Any) -> list[dict[str, Any]]:
    raw = getattr(policy, "raw", None) or {}
    review = raw.get("review") or {}
    return [dict(t) for t in review.get("notify") or []]


@dataclass
class Earlier:
    """Open review items of earlier runs that no digest reached: counted by reason, the first
    ones listed."""

    by_reason: Counter[str] = field(default_factory=Counter)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def add(self, record_id: str, reason: str, decision_id: str, *, keep: int) -> None:
        self.by_reason[reason] += 1
        if len(self.items) < keep:
            self.items.append({"record_id": record_id, "reason": reason,
                               "decision_id": decision_id})


def digest(source: str, run_id: str, refusals: list[dict[str, Any]],
           failures: list[dict[str, Any]], *, refused_by_reason: dict[str, int],
           write_failures: int, violations: list[dict[str, Any]] | None = None,
           violations_total: int = 0, earlier: Earlier | None = None,
           checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts are complete; the id lists are the first 500 of each. `violations`: cooling-off
    violations reported by the run (record id, decision id, rule, stage, not_before).
    `checkpoint`: the run's signed checkpoint file, so that every digest kept is an anchor of
    the ledger outside its database."""
    earlier = earlier or Earlier()
    return {"kind": "leadgate.sync.digest", "source": source, "run_id": run_id,
            "new_refusals": sum(refused_by_reason.values()),
            "refused_by_reason": dict(sorted(refused_by_reason.items())),
            "write_failures_total": write_failures,
            "cooling_off_violations_total": violations_total,
            "refusals": refusals[:500], "write_failures": failures[:500],
            "cooling_off_violations": (violations or [])[:500],
            "earlier_unnotified_total": earlier.total,
            "earlier_unnotified_by_reason": dict(sorted(earlier.by_reason.items())),
            "earlier_unnotified": earlier.items[:500],
            "checkpoint": checkpoint,
            "next": "leadgate review list"}


def _text(body: dict[str, Any]) -> str:
    lines = [f"leadgate sync {body['source']} run {body['run_id']}",
             f"{body['new_refusals']} new refusals in the compliance review queue"]
    lines += [f"  {reason}: {n}" for reason, n in sorted(body["refused_by_reason"].items())]
    if body.get("cooling_off_violations_total"):
        lines.append(f"{body['cooling_off_violations_total']} cooling-off violations (a record "
                     "moved into a blocked stage before its not_before):")
        lines += [f"  {v['record_id']} at {v['stage']} before {v['not_before']} ({v['rule']}) "
                  f"decision {v['decision_id']}"
                  for v in body.get("cooling_off_violations", [])[:200]]
    if body["write_failures_total"]:
        lines.append(f"{body['write_failures_total']} write-backs failed (retried next run)")
    lines += [f"  {r['record_id']} {r['reason']} decision {r['decision_id']}"
              for r in body["refusals"][:200]]
    if body.get("earlier_unnotified_total"):
        lines.append(f"{body['earlier_unnotified_total']} open review items from earlier runs "
                     "that no digest reached (a run stopped before its digest, or a target "
                     "was down):")
        lines += [f"  {reason}: {n}"
                  for reason, n in sorted(body["earlier_unnotified_by_reason"].items())]
        lines += [f"  {r['record_id']} {r['reason']} decision {r['decision_id']}"
                  for r in body["earlier_unnotified"][:200]]
    lines.append("Work the queue with: leadgate review list")
    if body.get("checkpoint"):
        st = body["checkpoint"]["checkpoint"]
        lines += ["", f"Ledger checkpoint {st['number']}: {st['size']} entries, root "
                      f"{st['root']}. Keep this message: the line below, saved as a file, is "
                      "what `leadgate audit verify --prior-checkpoint FILE` checks the ledger "
                      "against later (nothing it covers may be missing).",
                  json.dumps(body["checkpoint"], sort_keys=True, separators=(",", ":"))]
    return "\n".join(lines) + "\n"


def send(policy: Any, body: dict[str, Any], *,
         outbox: Path | None = None) -> tuple[list[str], list[str]]:
    """Send to every target; (targets reached, problems). Neither names more of a webhook than
    its scheme and host: its path or query may be its secret (a Slack or Teams hook's is)."""
    sent: list[str] = []
    problems: list[str] = []
    for target in targets(policy):
        kind = target.get("kind")
        if kind == "webhook":
            shown = _webhook_name(target.get("url"))
            try:
                url = _webhook_url(target.get("url"))
                resp = requests.post(url, json=body, timeout=WEBHOOK_TIMEOUT)
                resp.raise_for_status()
                sent.append(shown)
            except _Unusable as unusable:
                problems.append(f"{shown}: {unusable}")
            except requests.RequestException as exc:
                problems.append(f"{shown}: {_why(exc)}")
        elif kind == "email":
            try:
                sent.append(_email([str(a) for a in target.get("to") or []], body, outbox))
            except mail.Undelivered as why:
                problems.append(f"email {why}")
            except OSError as exc:  # the outbox
                where = f" {exc.filename}" if exc.filename else ""
                problems.append(f"email outbox{where}: cannot write ({exc.strerror or exc}); "
                                "set LEADGATE_SMTP_HOST to send through a mail relay, or "
                                "LEADGATE_OUTBOX to a writable folder")
        else:
            problems.append(f"unknown notify kind {kind!r}")
    return sent, problems


class _Unusable(Exception):
    """A webhook URL that cannot be posted to: its environment variable is unset, or it is not
    an http(s) URL."""


def _webhook_name(value: Any) -> str:
    """How a webhook is named: `webhook https://host/…`, or `webhook $NAME` when its URL comes
    from the environment."""
    if isinstance(value, dict):
        return f"webhook ${value.get('env')}"
    if not is_http_url(str(value)):
        return "webhook (not an http(s) URL)"
    parts = urlsplit(str(value))
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"webhook {parts.scheme}://{parts.hostname}{port}{rest}"


def _webhook_url(value: Any) -> str:
    url = str(value)
    if isinstance(value, dict):
        name = str(value.get("env"))
        url = os.environ.get(name, "")
        if not url:
            raise _Unusable(f"{name} is not set (export it where the job runs)")
    if not is_http_url(url):
        raise _Unusable("not an http:// or https:// URL with a host")
    if is_cleartext_remote(url):  # an {env:} URL is first seen here, not by the policy loader
        raise _Unusable(f"plain http:// to a host that is not loopback ({LOOPBACK_ONLY})")
    return url


def _why(exc: requests.RequestException) -> str:
    """What went wrong, without the exception's text (it repeats the URL)."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"answered HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {WEBHOOK_TIMEOUT:.0f} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failed (check the server's certificate)"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect (check its host name, the network and any proxy)"
    return f"failed ({type(exc).__name__})"


def _email(to: list[str], body: dict[str, Any], outbox: Path | None) -> str:
    msg = EmailMessage()
    violations = body.get("cooling_off_violations_total") or 0
    earlier = body.get("earlier_unnotified_total") or 0
    msg["Subject"] = (f"leadgate: {body['new_refusals']} new refusals, "
                      + (f"{earlier} earlier not yet notified, " if earlier else "")
                      + (f"{violations} cooling-off violations, " if violations else "")
                      + f"{body['write_failures_total']} failed writes ({body['source']})")
    sender = os.environ.get("LEADGATE_MAIL_FROM", "leadgate@localhost")
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    # RFC 5322 wants both; a relay that adds neither would pass on a message filters distrust
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid("leadgate", domain=sender.rpartition("@")[2] or None)
    msg.set_content(_text(body))
    msg.add_attachment(json.dumps(body, indent=2).encode(), maintype="application",
                       subtype="json", filename="digest.json")
    try:
        relay = mail.Relay.from_env()
    except mail.Undelivered as why:
        raise mail.Undelivered(f"via SMTP: {why}") from None
    if relay is not None:
        try:
            relay.send(msg)
        except mail.Undelivered as why:
            raise mail.Undelivered(f"via {relay.name}: {why}") from None
        return f"email via {relay.name}"
    outbox = Path(os.environ.get("LEADGATE_OUTBOX") or outbox or "leadgate-outbox")
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{body['source']}-{body['run_id']}.eml"
    write_atomically(path, bytes(msg))  # a relay watching *.eml never sees half a message
    return f"email outbox {path}"
