"""`leadgate audit explain`: everything the ledger knows about one lead, for a regulator.

Every entry about the subject, in order, with its sequence number and hash; a decision is shown
as the facts the routing core recorded (policy version and digest, screening, gates, the rule
and its evaluated conditions, the teams considered with their licences, the team and rep chosen
and why, outreach and cooling-off); write-backs and review actions follow. The whole chain is
verified, and each entry is located in the latest signed checkpoint with an inclusion proof.

Personal fields stay sealed unless asked for: an extract goes to regulators, auditors and
tickets, and most questions about a decision need none. Shown, they are decrypted with the
subject's key (or marked erased), and the showing is itself a ledger entry
(`personal_data_access`: who, why), appended before anything is decrypted.
"""

from __future__ import annotations

import getpass
import html
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit import crypto, schema
from audit.db import require_schema, snapshot, write_transaction
from audit.erasure import subject_key
from audit.errors import LedgerError, VerificationFailed
from audit.ledger import Appended, EntryIn, Ledger
from audit.merkle import Tree, verify_inclusion
from audit.reasons import check_reason
from audit.verify import ChainVerifier, Report, read_checkpoints, stream_entries
from routing_core.explain import leaf_text


@dataclass
class ExplainedEntry:
    seq: int
    kind: str
    time: str
    entry_hash: str
    payload: dict[str, Any]
    personal: dict[str, Any] | str | None  # dict, "sealed", "erased", "withheld", or None
    included_in: str | None = None
    unreadable: bool = False  # its bytes are not a ledger envelope (the chain check says why)


@dataclass
class Explanation:
    subject: str
    entries: list[ExplainedEntry] = field(default_factory=list)
    chain_ok: bool = False
    chain_message: str = ""
    erased_at: str | None = None


def _no_entries(subject: str) -> LedgerError:
    return LedgerError(f"no ledger entries about {subject!r}",
                       fix="give the subject as source:record_id (e.g. salesforce:00Q...)")


def record_personal_access(ledger: Ledger, subject: str, reason: str, *,
                           by: str | None = None) -> Appended:
    """Record in the ledger that `subject`'s personal data is about to be shown, and why."""
    check_reason(reason, what="showing personal data",
                 example="GDPR art. 15 subject access request DSR-2026-0412")
    with write_transaction(ledger.engine) as conn:
        if conn.execute(sa.select(schema.entries.c.seq)
                        .where(schema.entries.c.subject == subject).limit(1)).first() is None:
            raise _no_entries(subject)
        return ledger.append(conn, [EntryIn("personal_data_access", subject, {
            "subject": subject, "reason": reason, "by": by, "os_user": getpass.getuser()})])[0]


def explain_subject(engine: Engine, subject: str, *,
                    reveal_personal: bool = False) -> Explanation:
    """What the ledger holds about `subject`; personal fields decrypted only with
    `reveal_personal` (after `record_personal_access`)."""
    require_schema(engine)
    out = Explanation(subject)
    with snapshot(engine) as conn:
        e = schema.entries
        rows = conn.execute(sa.select(e.c.seq, e.c.kind, e.c.time,
                                      schema.StoredBlob(e.c.body).label("body"), e.c.entry_hash)
                            .where(e.c.subject == subject).order_by(e.c.seq)).all()
        if not rows:
            raise _no_entries(subject)
        key, out.erased_at = subject_key(conn, subject)
        head = conn.execute(sa.select(schema.head.c.ledger_id)).scalar_one()
        for row in rows:
            env = _envelope(row.body)
            sealed = env.get("personal")
            personal: dict[str, Any] | str | None = None
            if isinstance(sealed, dict) and "ct" in sealed:
                if not reveal_personal:
                    personal = "erased" if key is None else "sealed"
                elif key is None:
                    personal = "erased"
                else:
                    try:
                        personal = crypto.unseal(key, head, subject, sealed)
                    except ValueError:
                        personal = "undecryptable"
            elif isinstance(sealed, dict):
                personal = "withheld"
            out.entries.append(ExplainedEntry(
                int(row.seq), str(row.kind), str(row.time),
                schema.stored_bytes(row.entry_hash).hex(), env.get("payload") or {}, personal,
                unreadable=not env))
        _verify_and_locate(conn, head, out)
    return out


def _envelope(body: object) -> dict[str, Any]:
    """The entry's envelope, or {} when an edited row's bytes are not one: the page still
    shows the lead's other entries, and the chain check names this one."""
    try:
        env = json.loads(schema.stored_bytes(body))
    except ValueError:  # not JSON, or not UTF-8
        return {}
    return env if isinstance(env, dict) and isinstance(env.get("payload"), dict) else {}


def _verify_and_locate(conn: Any, ledger_id: str, out: Explanation) -> None:
    cps = read_checkpoints(conn)
    verifier = ChainVerifier(ledger_id, cps, keep_leaves=True)
    rows = stream_entries(conn)
    try:
        verifier.feed(rows)
        report: Report = verifier.finish()
    except VerificationFailed as exc:
        out.chain_ok = False
        out.chain_message = f"THE LEDGER DOES NOT VERIFY: {exc}"
        return
    finally:
        rows.close()
    out.chain_ok = True
    out.chain_message = report.summary()
    if not cps or verifier.leaves is None:
        return
    last = cps[-1].statement
    size, root = int(last["size"]), bytes.fromhex(last["root"])
    tree = Tree(verifier.leaves[:size])
    for entry in out.entries:
        if entry.seq <= size:
            proof = tree.inclusion_proof(entry.seq - 1, size)
            ok = verify_inclusion(bytes.fromhex(entry.entry_hash), entry.seq - 1, size, proof, root)
            entry.included_in = (f"included in signed checkpoint {last['number']} "
                                 f"({last['time']}, {size} entries)" if ok
                                 else "NOT included in the latest checkpoint")
        else:
            entry.included_in = "after the latest checkpoint (not yet signed)"


# -- rendering -------------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _conditions(rule: dict[str, Any]) -> list[str]:
    return [f"  {leaf_text(c)}" for c in rule.get("conditions") or []]


def _decision_lines(p: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    pol = p.get("policy") or {}
    lines.append(f"decision {p.get('decision_id')} at {p.get('decided_at')}: "
                 f"{str(p.get('outcome', '?')).upper()}"
                 + (f" (reason: {p['reason']})" if p.get("reason") else ""))
    if p.get("detail"):
        lines.append(f"why: {p['detail']}")
    lines.extend(f"problem: {problem}" for problem in p.get("problems") or [])
    lines.extend(f"note: {note}" for note in p.get("notes") or [])
    lines.append(f"policy {pol.get('id')} version {pol.get('version')}, digest {pol.get('digest')}")
    lead = p.get("lead") or {}
    if lead:
        lines.append("lead facts: " + ", ".join(f"{k}={_fmt(v)}" for k, v in lead.items()))
    for s in p.get("screening") or []:
        lines.append(f"screening {s.get('check')} list {s.get('list')} ({s.get('list_digest')}): "
                     f"hit={s.get('hit')} best score {s.get('best_score')}")
    for g in p.get("gates") or []:
        lines.append(f"gate {g.get('id')}: " + ", ".join(
            f"{k}={_fmt(v)}" for k, v in g.items() if k not in ("id", "conditions")))
        lines.extend(_conditions(g))
    for r in p.get("rules_tried") or []:
        lines.append(f"rule tried {r.get('id')}: does not hold")
        lines.extend(_conditions(r))
    rule = p.get("rule") or {}
    if rule:
        lines.append(f"rule {rule.get('id')} matched; conditions evaluated:")
        lines.extend(_conditions(rule))
    for t in p.get("teams_considered") or []:
        licence = f", licence {t['license']}" if t.get("license") else ""
        lines.append(f"team considered {t.get('team')}: eligible={t.get('eligible')}{licence}: "
                     f"{t.get('why')}")
    team, rep = p.get("team"), p.get("rep")
    if team:
        lines.append(f"team chosen {team.get('id')}: {team.get('why')}")
    if rep:
        lines.append(f"rep chosen {rep.get('id')} (CRM {rep.get('crm_id')}): {rep.get('why')}")
    if p.get("queue"):
        lines.append(f"sent to queue {p.get('queue')}")
    lines.append(f"outreach: {_fmt(p.get('outreach'))}")
    lines.append(f"cooling-off: {_fmt(p.get('cooling_off'))}")
    return lines


def entry_lines(entry: ExplainedEntry) -> list[str]:
    if entry.unreadable:
        return ["[unreadable: the entry's bytes are not a ledger envelope (see Chain above)]"]
    if entry.kind == "decision":
        lines = _decision_lines(entry.payload)
    else:
        lines = [f"{k}: {_fmt(v)}" for k, v in sorted(entry.payload.items())]
    if isinstance(entry.personal, dict):
        lines.append("personal data: " + ", ".join(f"{k}={_fmt(v)}"
                                                   for k, v in sorted(entry.personal.items())))
    elif entry.personal == "erased":
        lines.append("personal data: [erased: the subject's key was destroyed]")
    elif entry.personal == "sealed":
        lines.append("personal data: [sealed: --show-personal --reason '...' shows it, "
                     "and records that in the ledger]")
    elif entry.personal:
        lines.append(f"personal data: [{entry.personal}]")
    return lines


def render_text(ex: Explanation) -> str:
    out = [f"Ledger entries about {ex.subject}: {len(ex.entries)}"
           + (f" (personal data erased {ex.erased_at})" if ex.erased_at else ""),
           f"Chain: {ex.chain_message}", ""]
    for entry in ex.entries:
        out.append(f"#{entry.seq} {entry.kind} at {entry.time}  hash {entry.entry_hash}")
        if entry.included_in:
            out.append(f"    {entry.included_in}")
        out.extend("    " + line for line in entry_lines(entry))
        out.append("")
    return "\n".join(out)


_CSS = """
body{font:11pt/1.45 Georgia,serif;max-width:60em;margin:2em auto;color:#111}
h1{font-size:16pt}h2{font-size:12pt;margin:1.2em 0 .3em;border-bottom:1px solid #999}
code,.mono{font-family:Menlo,Consolas,monospace;font-size:9pt;word-break:break-all}
.ok{color:#064}.bad{color:#a00;font-weight:bold}ul{margin:.2em 0 .6em 1.2em;padding:0}
.entry{page-break-inside:avoid}@media print{body{margin:0}}
"""


def render_html(ex: Explanation) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>leadgate ledger: {esc(ex.subject)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Audit ledger extract for {esc(ex.subject)}</h1>",
        f"<p class='{'ok' if ex.chain_ok else 'bad'}'>{esc(ex.chain_message)}</p>",
    ]
    if ex.erased_at:
        parts.append(f"<p>Personal data of this subject was erased on {esc(ex.erased_at)}.</p>")
    for entry in ex.entries:
        parts.append("<div class='entry'>")
        parts.append(f"<h2>#{entry.seq} {esc(entry.kind)} &middot; {esc(entry.time)}</h2>")
        parts.append(f"<p>entry hash <code>{esc(entry.entry_hash)}</code>"
                     + (f"<br>{esc(entry.included_in)}" if entry.included_in else "") + "</p>")
        parts.append("<ul>" + "".join(f"<li>{esc(line.strip())}</li>"
                                       for line in entry_lines(entry)) + "</ul></div>")
    parts.append("<p><small>Generated by leadgate audit explain. Verify independently with "
                 "<code>leadgate audit verify</code> on an export bundle.</small></p>")
    parts.append("</body></html>\n")
    return "".join(parts)
