"""The compliance review queue: list, approve a specific assignment, reject.

Officers are the policy's `review.officers`. Each authenticates with a per-officer token created
by `leadgate review add-officer ID --by OFFICER`; only a SHA-256 of the token is stored, in a
file kept outside the policy (leadgate.yaml's `officer_keys`, by default `leadgate-officers.json`
next to it, mode 0600); `revoke-officer` removes it. Issuing, replacing and revoking are
authorised by an authenticated officer (only the ledger's first credential, its bootstrap, is
issued without) and are `officer_credential` ledger entries naming the credential
(`credential_of`) and who authorised it. The OS user and the credential used are recorded with
every action.

Every action is a `review_action` ledger entry. An approval is written back to the CRM (the rep
becomes the owner; the record is stamped with the action's id); a rejection re-stamps the record
as refused. With `four_eyes_for_overrides`, an approval that overrides a failed licence check
(the refusal was about licences, or the chosen team, or the chosen rep of a team that requires
individual licences, holds none for the lead as the CRM holds it now), or that sets aside a
screening hit (sanctions, PEP, blocklist), needs two distinct officers: the first approval
waits, the second completes it, unless either may know the other's token (one authorised the
other's: `credential_knowers`). A lead that could not be screened cannot be approved.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from ulid import ULID

from audit.db import write_transaction
from audit.files import write_atomically
from audit.ledger import EntryIn, read_payloads
from connectors.config import Config
from routing_core.decision import iso, json_safe, rules_json
from routing_core.errors import LeadgateError
from routing_core.lead import Lead
from routing_core.licensing import Days, licence_days, rep_licence, team_authority
from routing_core.outreach import select_cooling_off
from routing_core.policy.conditions import Facts
from routing_core.policy.model import Member, Policy, Team
from sync.context import Context, config_path, existing_policy, open_context
from sync.rotation_db import count_assignment
from sync.state import (
    CONFLICT,
    PENDING,
    dumps,
    loads,
    sync_decisions,
    sync_review_queue,
    utcnow,
)
from sync.violations import REASON as VIOLATION
from sync.writeahead import OPEN_STATUSES, ToWrite, normalise

log = logging.getLogger("leadgate.review")  # ids only: never a name, a note or a token

LICENCE_REASONS = frozenset({"unlicensed_jurisdiction", "no_licensed_team"})
# A screening hit set aside is at least as grave as a licence gap: four eyes too.
SCREENING_REASONS = frozenset({"sanctions_hit", "pep", "blocklisted"})


def keys_path(config: Config) -> Path:
    """The officer key file leadgate.yaml names (`officer_keys`; by default next to it). Not
    an environment variable: who may act as an officer is not for one call to redirect."""
    return config.officer_keys


def credential_of(token_sha256: str) -> str:
    """The public name of one issued token: recorded with its issue and with every action
    taken with it, so that an auditor can tie each action to an `officer_credential` entry.
    A hash of the stored hash: with 256-bit tokens it gives nothing away."""
    return "cred:" + hashlib.sha256(f"leadgate officer credential\n{token_sha256}".encode()
                                    ).hexdigest()[:32]


def _officers(policy: Policy) -> dict[str, Any]:
    return {str(o["id"]): o for o in policy.review.officers}


# Not "start a new file": while the ledger records live credentials, new tokens take an
# officer's authentication, which the file holds (else deleting it would reopen the bootstrap).
_KEYS_FIX = ("restore it from a backup: new tokens need an officer's authentication, which "
             "the file holds")


def _read_keys(path: Path) -> dict[str, Any]:
    """The officer key file, {officer: {"sha256", "created_at", "created_by"}}; none yet: {}."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise LeadgateError(f"cannot read the officer key file ({reason})", where=str(path),
                            fix="run leadgate as the user that owns it (mode 0600)") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise LeadgateError("the officer key file is not leadgate's JSON", where=str(path),
                            fix=_KEYS_FIX)
    return data


def _change_keys(ctx: Context, officer: str,
                 change: Callable[[sa.Connection, dict[str, Any]], str],
                 authorised_by: dict[str, Any] | None) -> Path:
    """Change the officer key file and record what changed as an `officer_credential` entry.

    Both happen under the ledger's write lock, so two administrators at once cannot lose each
    other's token; the file is put back if the entry does not commit, so no credential is issued
    or revoked without its record. The token and its hash never reach the ledger."""
    path = keys_path(ctx.config)
    before: bytes | None = None
    written = False
    try:
        with write_transaction(ctx.engine) as conn:
            keys = _read_keys(path)
            before = path.read_bytes() if path.exists() else None
            earlier = str(keys.get(officer, {}).get("sha256", ""))
            action = change(conn, keys)
            now = str(keys.get(officer, {}).get("sha256", ""))
            payload = {"officer": officer, "action": action, "os_user": getpass.getuser(),
                       "credential": credential_of(now) if now else None,
                       "ended_credential": credential_of(earlier) if earlier and earlier != now
                       else None,
                       "authorised_by": authorised_by, "bootstrap": authorised_by is None,
                       "in_policy": officer in _officers(ctx.policy),
                       "policy": {"id": ctx.policy.id, "version": ctx.policy.version,
                                  "digest": ctx.policy.digest}}
            ctx.ledger.append(conn, [EntryIn("officer_credential", None, payload)])
            # Signed with the change, not after it: a token issued but left unsigned could
            # not be shown (the command fails), so a failure to sign changes nothing.
            ctx.ledger.checkpoint(conn)
            write_atomically(path, json.dumps(keys, indent=2, sort_keys=True) + "\n",
                             private=True)
            written = True
    except BaseException:
        if written:
            if before is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, before, private=True)
        raise
    return path


_BY_FIX = ("pass --by with your officer id and your token (--token, LEADGATE_OFFICER_TOKEN or "
           "the prompt); nothing was changed")


def _authoriser(ctx: Context, by: str | None, token: str | None, action: str
                ) -> dict[str, Any] | None:
    """The officer authorising a credential change (None: nobody claimed to), authenticated
    as for any other officer action, refusals recorded."""
    if by is None:
        return None
    if not token:
        exc = OfficerRefused(f"no token given for officer {by!r}", where="--token",
                             fix=_BY_FIX)
        record_refused(ctx.ledger, by, action, exc)
        raise exc
    return authenticate(ctx, by, token, action)


def _still_authorised(conn: sa.Connection, who: dict[str, Any] | None, action: str) -> None:
    """Under the write lock: a change needs an officer whose credential is current (one
    revoked since they authenticated no longer counts). Only the first credential a ledger
    records is issued without one: until then there is no officer to ask."""
    if who is None:
        if live_credentials(conn):
            raise OfficerRefused(
                f"{action.replace('_', '-')} needs an authenticated officer: officer "
                "credentials exist for this ledger", where="--by", fix=_BY_FIX)
    elif recorded_credential(conn, who["officer"]) != who["credential"]:
        raise OfficerRefused(f"officer {who['officer']!r}'s token was revoked or replaced "
                             "meanwhile", where="--by", fix="authorise it with a current token")


def _audited(ctx: Context, by: str | None, action: str, change: Callable[[], Path]) -> Path:
    """Run a credential change; a refusal to authorise it is recorded as for any officer."""
    try:
        return change()
    except OfficerRefused as exc:
        record_refused(ctx.ledger, by, action, exc)
        raise


def add_officer(config: str | None, officer: str, *, by: str | None = None,
                token: str | None = None) -> tuple[str, Path]:
    """A new token for an officer of the policy (replacing any earlier one), and the key file.

    Authorised by officer `by` with their `token`, recorded as `authorised_by`; without one
    only while the ledger records no live credential (the bootstrap). An officer replaces
    their own token only by authenticating with it (rotation): `by` == `officer`."""
    ctx = open_context(config)  # a first credential may come before any sync run
    try:
        if officer not in _officers(ctx.policy):
            raise LeadgateError(f"{officer!r} is not an officer of policy {ctx.policy.id}",
                                where="review.officers",
                                fix="add the officer to the policy's review.officers first")
        who = _authoriser(ctx, by, token, "add_officer")
        new = secrets.token_urlsafe(32)

        def issue(conn: sa.Connection, keys: dict[str, Any]) -> str:
            _still_authorised(conn, who, "add_officer")
            action = "replaced" if officer in keys else "issued"
            keys[officer] = {"sha256": hashlib.sha256(new.encode()).hexdigest(),
                             "created_at": utcnow().isoformat(), "created_by": getpass.getuser(),
                             "authorised_by": who["officer"] if who else None}
            return action

        return new, _audited(ctx, by, "add_officer",
                             lambda: _change_keys(ctx, officer, issue, who))
    finally:
        ctx.close()


def revoke_officer(config: str | None, officer: str, *, by: str | None = None,
                   token: str | None = None) -> Path:
    """Remove an officer's token at once (an officer who left need not wait for a policy
    change); the officer may still be in the policy, and gets a token again with add-officer.
    Authorised by an officer, as issuing is; the last live credential is kept, since with
    none left anyone who can run leadgate could issue the first one again."""
    ctx = open_context(config)
    try:
        who = _authoriser(ctx, by, token, "revoke_officer")

        def revoke(conn: sa.Connection, keys: dict[str, Any]) -> str:
            if who is None:
                raise OfficerRefused("revoke-officer needs an authenticated officer",
                                     where="--by", fix=_BY_FIX)
            _still_authorised(conn, who, "revoke_officer")
            if keys.pop(officer, None) is None:
                raise LeadgateError(f"{officer!r} has no token to revoke",
                                    where=str(keys_path(ctx.config)),
                                    fix="check the officer id; nothing was changed")
            if set(live_credentials(conn)) <= {officer}:
                raise LeadgateError(
                    f"{officer!r} holds the last officer credential of this ledger",
                    where="review officers", fix="issue another officer's token first, then "
                    "revoke this one; nothing was changed")
            return "revoked"

        return _audited(ctx, by, "revoke_officer",
                        lambda: _change_keys(ctx, officer, revoke, who))
    finally:
        ctx.close()


def authenticate(ctx: Context, officer: str, token: str, action: str) -> dict[str, Any]:
    """The officer's identity to record; LeadgateError when unknown or the token is wrong
    (the refused attempt is recorded too: see `record_refused`)."""
    try:
        return _authenticate(ctx.policy, keys_path(ctx.config), officer, token, ctx.engine)
    except OfficerRefused as exc:
        record_refused(ctx.ledger, officer, action, exc)
        raise


def record_refused(ledger: Any, officer: str | None, action: str, exc: LeadgateError) -> None:
    """An `officer_auth_refused` entry: who claimed to be which officer, for what, and why it
    was refused; never the token. Attempts to act as an officer, or to see or erase personal
    data, are what an auditor asks about. Best effort: the refusal stands if it cannot be
    written (the database down is its own error, next)."""
    payload = {"officer": officer, "action": action, "os_user": getpass.getuser(),
               "why": exc.message}
    try:
        with write_transaction(ledger.engine) as conn:
            ledger.append(conn, [EntryIn("officer_auth_refused", None, payload)])
    except Exception:  # noqa: BLE001 - the officer's error is the one to show
        return
    sign_or_warn(ledger, f"the refused {action} by {officer!r} is recorded")


def sign_or_warn(ledger: Any, done: str) -> None:
    """A checkpoint over what a failing command recorded (a refused attempt, an action the CRM
    did not take): the command's own error is the one to show, so a checkpoint that cannot be
    signed is a warning on stderr."""
    try:
        ledger.checkpoint_recorded(done)
    except LeadgateError as exc:
        log.warning("%s", exc)


def _signed(ctx: Context, done: str) -> str:
    """`done`, once a checkpoint covers the entries the action just committed (NotSigned, exit
    1, if none could be signed: the action stands)."""
    ctx.ledger.checkpoint_recorded(done)
    return done


def authenticate_officer(config: str | Path | None, officer: str, token: str,
                         engine: sa.Engine) -> dict[str, Any]:
    """The same check for an officer's action outside the queue (`audit erase`, showing personal
    data), against the policy and key file of leadgate.yaml and the ledger of `engine`."""
    from connectors.config import load_config
    from routing_core.policy import load_policy

    path = config_path(str(config) if config else None)
    cfg = load_config(path)
    return _authenticate(load_policy(existing_policy(path, cfg)), keys_path(cfg), officer,
                         token, engine)


class OfficerRefused(LeadgateError):
    """Not an officer of the policy, or not the holder of that officer's token."""


def _authenticate(policy: Policy, keys: Path, officer: str, token: str,
                  engine: sa.Engine) -> dict[str, Any]:
    if officer not in _officers(policy):
        raise OfficerRefused(f"{officer!r} is not an officer of policy {policy.id}",
                            where="--officer", fix="use your id from the policy's review.officers")
    stored = str(_read_keys(keys).get(officer, {}).get("sha256", ""))
    given = hashlib.sha256(token.encode()).hexdigest()
    if not stored or not hmac.compare_digest(stored, given):
        raise OfficerRefused(f"officer {officer!r} could not be authenticated", where=str(keys),
                            fix="use your token, or ask another officer to issue you one with "
                                f"`leadgate review add-officer {officer} --by THEIR_ID`")
    # The key file says who holds a token; the ledger says who was given one. A token written
    # into the file by hand, or issued by a leadgate that did not record credentials, was
    # never recorded as issued, so it does not count.
    with engine.connect() as conn:
        recorded = recorded_credential(conn, officer)
    if recorded != credential_of(given):
        why = ("was issued before leadgate recorded credentials" if recorded is _UNNAMED
               else "is not the credential the ledger recorded as issued to them (the key "
                    "file was changed outside leadgate)")
        raise OfficerRefused(f"officer {officer!r}'s token {why}", where=str(keys),
                            fix="ask another officer to issue you a new token with `leadgate "
                                f"review add-officer {officer} --by THEIR_ID`")
    return {"officer": officer, "os_user": getpass.getuser(), "credential": credential_of(given)}


_UNNAMED = object()  # an officer_credential entry written before credentials were named


def recorded_credential(conn: sa.Connection, officer: str) -> Any:
    """The officer's credential as the ledger last recorded it (`officer_credential`
    entries): None when revoked or never issued."""
    for payload in read_payloads(conn, "officer_credential", None):
        if payload.get("officer") == officer:
            return payload.get("credential", _UNNAMED)
    return None


def live_credentials(conn: sa.Connection) -> dict[str, str]:
    """Each officer's credential the ledger records as current, for officers holding one
    (one recorded without a name cannot authenticate, so it does not count)."""
    latest: dict[str, Any] = {}
    for payload in read_payloads(conn, "officer_credential", None):
        latest.setdefault(str(payload.get("officer")), payload.get("credential"))
    return {o: c for o, c in latest.items() if isinstance(c, str)}


def credential_knowers(conn: sa.Connection, credential: str) -> set[str]:
    """The officers who may know a credential's token: its holder, and whoever authorised its
    issue, since `add-officer` prints the token to them (and, in turn, whoever may know the
    authorising token). An officer's own rotation, authenticated with their token, ends the
    chain: the new token was printed to the holder alone. A bootstrap has no authoriser."""
    issued = {p["credential"]: p for p in read_payloads(conn, "officer_credential", None)
              if isinstance(p.get("credential"), str)}
    knowers: set[str] = set()
    seen: set[str] = set()
    while credential in issued and credential not in seen:
        seen.add(credential)
        entry = issued[credential]
        knowers.add(str(entry["officer"]))
        by = entry.get("authorised_by")
        if not by or by["officer"] == entry["officer"]:
            break
        credential = str(by["credential"])
    return knowers


def list_items(config: str | None, *, show_all: bool = False,
               reasons: tuple[str, ...] = (), source: str | None = None
               ) -> list[dict[str, Any]]:
    """Review items, oldest first, optionally only of these reasons or this source. `kind`:
    "refusal" (a lead leadgate refused) or "violation" (an assigned lead moved into its
    cooling-off window's blocked stage too early; the item carries the assignment's decision
    id). `lead` is what the decision recorded of the lead to pick a team by: jurisdiction,
    customer type and product (no personal data; {} for a lead that did not normalise)."""
    ctx = open_context(config, migrate=False, reads_only=True)
    try:
        if source is not None:
            ctx.source(source)  # a misspelt source is an error, not an empty queue
        d = sync_decisions.c
        query = sa.select(sync_review_queue, d.outcome, d.decision).outerjoin(
            sync_decisions, d.decision_id == sync_review_queue.c.decision_id
        ).order_by(sync_review_queue.c.id)
        if not show_all:
            query = query.where(sync_review_queue.c.status.in_(OPEN_STATUSES))
        if reasons:
            query = query.where(sync_review_queue.c.reason.in_(reasons))
        if source is not None:
            query = query.where(sync_review_queue.c.source == source)
        with ctx.engine.connect() as conn:
            return [{"id": r.id, "source": r.source, "record_id": r.record_id,
                     "decision_id": r.decision_id, "reason": r.reason,
                     "kind": _kind(r.reason, r.outcome),
                     "transient": r.transient, "status": r.status,
                     "created_at": r.created_at, "approvals": loads(r.approvals) or [],
                     "resolved_at": r.resolved_at, "resolved_by": r.resolved_by,
                     "lead": _routing_facts(r.decision)}
                    for r in conn.execute(query)]
    finally:
        ctx.close()


def _routing_facts(decision: str | None) -> dict[str, Any]:
    lead = ((loads(decision) or {}).get("lead") or {}) if decision else {}
    return {k: lead[k] for k in ("jurisdiction", "customer_type", "product") if k in lead}


def _kind(reason: str, outcome: str | None) -> str:
    return "violation" if reason == VIOLATION and outcome == "assigned" else "refusal"


def _not_a_violation(conn: sa.Connection, row: Any, action: str) -> None:
    outcome = conn.execute(sa.select(sync_decisions.c.outcome).where(
        sync_decisions.c.decision_id == row.decision_id)).scalar()
    if _kind(row.reason, outcome) == "violation":
        raise LeadgateError(
            f"item {row.id} reports a cooling-off violation by an assigned lead; there is no "
            f"refusal to {action}", where="review queue",
            fix=f"record how it was handled with `leadgate review resolve {row.id} --note ...`")


def _find(conn: sa.Connection, item: str) -> Any:
    q = sa.select(sync_review_queue)
    if item.isdigit():
        q = q.where(sync_review_queue.c.id == int(item))
    else:
        source, _, record_id = item.partition(":")
        q = q.where(sync_review_queue.c.source == source,
                    sync_review_queue.c.record_id == record_id,
                    sync_review_queue.c.status.in_(OPEN_STATUSES))
    row = conn.execute(q.order_by(sync_review_queue.c.id.desc())).first()
    if row is None or row.status not in OPEN_STATUSES:
        raise LeadgateError(f"no open review item {item!r}", where="review queue",
                            fix="see `leadgate review list`")
    return row


def _unchanged(conn: sa.Connection, row: Any, officers: list[dict[str, Any]]) -> None:
    """Inside the write transaction, before anything is written: the item must still be as it
    was read, and each officer's credential the one the ledger records now (a token revoked
    or replaced while the CRM was read no longer acts). The writer lock serialises this with
    other officers' actions, token changes and the sync job's re-evaluation (which may
    supersede the item and assign the lead itself)."""
    q = sync_review_queue.c
    now = conn.execute(sa.select(q.status, q.approvals).where(q.id == row.id)).one()
    if (now.status, now.approvals) != (row.status, row.approvals):
        raise LeadgateError(
            f"review item {row.id} changed while this action was being recorded (it is now "
            f"{now.status}); no action was recorded", where="review queue",
            fix="see `leadgate review list`, and act again if the item is still open")
    for who in officers:
        if recorded_credential(conn, who["officer"]) != who["credential"]:
            raise LeadgateError(
                f"officer {who['officer']!r}'s token was revoked or replaced while this "
                "action was being recorded; no action was recorded", where="review queue",
                fix="act again with a current token")


def _screened(row: Any) -> None:
    """A lead that was never screened cannot be assigned by an officer (fail closed): one
    refused because screening could not run (later runs screen it again), or because its
    record did not normalise (refused before screening: once the record is corrected, sending
    it back to intake has the job decide it, screening included)."""
    if row.reason == "screening_unavailable":
        raise LeadgateError(
            f"item {row.id}: the lead was never screened (screening was unavailable), so it "
            "cannot be approved", where="review queue",
            fix="let the next `leadgate sync run` screen it again once the lists load, or "
                f"reject it with `leadgate review reject {row.id}`")
    if row.reason == "invalid_lead":
        raise LeadgateError(
            f"item {row.id}: the lead was never screened (its record did not normalise, and "
            "was refused before screening), so it cannot be approved", where="review queue",
            fix="correct the record in the CRM and send it back to intake (the intake queue as "
                "owner, leadgate's status cleared) so the job decides it, screening included; "
                f"or reject it with `leadgate review reject {row.id}`")


def _hit_key(result: dict[str, Any]) -> tuple[str, str, Any]:
    """A screening hit's identity: which check, on which list, on which of its entries."""
    return result["check"], result["list"], (result.get("matched") or {}).get("entry")


def _refused_hits(conn: sa.Connection, row: Any) -> set[tuple[str, str, Any]]:
    """The screening hits the refusal recorded, from its ledger `decision` entry
    (`sync_decisions` keeps no screening). None found: none were considered (fail closed)."""
    for payload in read_payloads(conn, "decision", f"{row.source}:{row.record_id}"):
        if payload.get("decision_id") == row.decision_id:
            return {_hit_key(r) for r in payload.get("screening") or () if r.get("hit")}
    return set()


def _screening_now(policy: Policy, lead: Lead, row: Any,
                   considered: set[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    """The lead as the CRM holds it now, screened again: a record changed since its decision
    (a new name) may have become a hit that no officer has looked at. Fail closed: lists that
    cannot be read stop the approval."""
    from sync.context import screener_for

    try:
        results = list(screener_for(policy).screen(lead))
    except Exception as exc:  # noqa: BLE001 - any screener failure must stop, never assign
        raise LeadgateError(
            f"item {row.id}: the lead cannot be screened now ({type(exc).__name__}: {exc})",
            where="review queue",
            fix="approve again once the screening lists load; no action was recorded") from None
    # The officers consider the hits the lead was refused for: each list entry it matched
    # then. Any other (a PEP refusal whose lead is now on a sanctions list, or matches another
    # PEP) is a hit nobody has looked at.
    hits = [r for r in results if r.hit and _hit_key(r.to_json()) not in considered]
    if hits:
        found = ", ".join(f"{r.check} hit on list {r.list}" for r in hits)
        raise LeadgateError(
            f"item {row.id}: the lead as the CRM holds it now is a screening hit ({found}) "
            f"that its refusal ({row.reason}) did not consider, so it cannot be approved",
            where="review queue",
            fix="send it back to intake so the job decides it anew (screening refuses it to "
                f"compliance), or reject it with `leadgate review reject {row.id}`")
    return [r.to_json() for r in results]


def _authority(policy: Policy, team: Team, member: Member, lead: Lead,
               days: Days) -> dict[str, Any]:
    """The licence checks the routing core makes, made again for the officer's choice on the
    lead as the CRM holds it now: the team's licence and, where the team requires one, the
    rep's own. Any gap makes the approval an override of a failed licence check."""
    licence, why = team_authority(team, lead, days, policy)
    out: dict[str, Any] = {"team_licence": licence.id if licence else None, "team_why": why,
                           "rep_available": member.available}
    gaps = [] if licence is not None else [f"team {team.id}: {why}"]
    if team.requires_individual_license:
        own = rep_licence(member, lead, days, policy)
        out["rep_licence"] = own.id if own else None
        if own is None:
            gaps.append(f"{member.id} holds no valid individual licence for "
                        f"{lead.jurisdiction.code} / {lead.product} / {lead.customer_type}")
    out["licensed"] = not gaps
    out["gaps"] = gaps
    return out


def approve(config: str | None, item: str, *, team: str, rep: str, officer: str, token: str,
            note: str = "") -> str:
    ctx = open_context(config)
    try:
        ctx.ledger.check_signing_key()  # before anything is recorded: it is signed at once
        who = authenticate(ctx, officer, token, "approve")
        try:
            done = _approve(ctx, item, team=team, rep=rep, officer=officer, who=who, note=note)
        except NotWritten:
            sign_or_warn(ctx.ledger, "the approval is recorded")  # an action already
            raise
        except LeadgateError as exc:
            _record_refused_action(ctx, who, "approve", item, exc,
                                   {"team": team, "rep": rep})
            raise
        return _signed(ctx, done)
    finally:
        ctx.close()


# How an item is named (`review list`): its number, or source:record id; anything else typed
# there is recorded as NOT_AN_ID.
_ITEM_ID = re.compile(r"\d+|[A-Za-z0-9_.-]+:[A-Za-z0-9_-]+")
NOT_AN_ID = "(not an id of the policy or the queue)"


def _record_refused_action(ctx: Context, who: dict[str, Any], action: str, item: str,
                           exc: LeadgateError, asked: dict[str, Any]) -> None:
    """An `officer_action_refused` entry: an authenticated officer asked for an action that was
    refused (the lead is now a screening hit, was never screened, the rep is unavailable...).
    An auditor asks about attempts as well as actions. Filed under the item's lead when it is
    known; the reason, and what was typed, are sealed with the subject's personal data (they
    may quote the record). In clear, only the ids of the policy's teams and reps, and an item
    id: an officer who typed a customer's name where an id belongs must not have written it
    into the ledger for good. Best effort, as for refused logins: the refusal stands if it
    cannot be written."""
    subject = None
    with contextlib.suppress(Exception):
        with ctx.engine.connect() as conn:
            row = _find(conn, item)
        subject = f"{row.source}:{row.record_id}"
    known = {"team": set(ctx.policy.teams), "rep": ctx.policy.rep_ids}
    payload: dict[str, Any] = {
        "action": action, "officer": who, "where": exc.where,
        "item": item if subject is not None or _ITEM_ID.fullmatch(item) else NOT_AN_ID,
        "asked": {k: v if v in known.get(k, ()) else NOT_AN_ID for k, v in asked.items()}}
    personal = None
    if subject is None:  # no item: nothing to seal with, and the message quotes what was typed
        payload["why"] = "no open review item of the id given"
    else:
        personal = {"why": exc.message, "asked": asked}
    try:
        with write_transaction(ctx.engine) as conn:
            ctx.ledger.append(conn, [EntryIn("officer_action_refused", subject, payload,
                                             personal=personal)])
    except Exception:  # noqa: BLE001 - the officer's error is the one to show
        return
    sign_or_warn(ctx.ledger, f"the refused {action} by {who['officer']!r} is recorded")


def _action_entry(subject: str, payload: dict[str, Any], note: str) -> EntryIn:
    """A `review_action` entry. The officer's note is sealed with the subject's personal data:
    officers write what they checked ("spoke to <name> on <phone>"), so it is shown only with
    `--show-personal` and erased with the subject; the payload (and the decision row copied
    from it) says only whether there was one."""
    return EntryIn("review_action", subject, payload,
                   personal={"note": note} if note else None)


def _approve(ctx: Context, item: str, *, team: str, rep: str, officer: str,
             who: dict[str, Any], note: str) -> str:
    teams = ctx.policy.teams
    if team not in teams:
        raise LeadgateError(f"no team {team!r} in the policy", where="--team",
                            fix="use a team id from the policy")
    member = next((m for m in teams[team].members if m.id == rep), None)
    if member is None:
        raise LeadgateError(f"{rep!r} is not a member of team {team!r}", where="--rep",
                            fix="choose a rep of that team")
    if not member.available:  # told only after the write, the officer could not act on it
        raise LeadgateError(f"{rep!r} is marked unavailable in the policy", where="--rep",
                            fix="choose an available rep of the team, or make the rep "
                                "available in the policy first")
    with ctx.engine.connect() as conn:
        row = _find(conn, item)
        _not_a_violation(conn, row, "approve")
        refused = loads(conn.execute(sa.select(sync_decisions.c.decision).where(
            sync_decisions.c.decision_id == row.decision_id)).scalar_one())
        refused_hits = _refused_hits(conn, row)
        current = {a["officer"]: recorded_credential(conn, a["officer"])
                   for a in loads(row.approvals) or []}
        knowers = {c: credential_knowers(conn, c) for c in
                   {who["credential"], *(str(v) for v in current.values() if v)}}
    _screened(row)
    _, source_cfg = ctx.source(row.source)
    crm_id = (member.crm or {}).get(source_cfg.kind)
    if not crm_id:
        raise LeadgateError(f"rep {rep!r} has no {source_cfg.kind} id in the policy",
                            where=f"teams.{team}.members", fix="add crm.{kind} for the rep")
    now = utcnow()
    lead = _lead_now(row, source_cfg)
    screening = _screening_now(ctx.policy, lead, row, refused_hits)
    day = now.astimezone(ctx.policy.tz).date()  # the policy's day: caps
    authority = _authority(ctx.policy, teams[team], member, lead,
                           licence_days(now, day, lead))
    override = row.reason in LICENCE_REASONS or not authority["licensed"]
    screening_set_aside = row.reason in SCREENING_REASONS
    four_eyes = bool(ctx.policy.review.four_eyes_for_overrides) and (
        override or screening_set_aside)
    approvals = loads(row.approvals) or []
    # An approval counts while the credential it was given with is the one the ledger
    # records for its officer now: an officer revoked since, given a new token since (the
    # old one may have been stolen) or dropped from the policy is no longer a pair of eyes
    # (this approval may become the first), whatever the key file was made to say.
    lapsed = [a for a in approvals if a["officer"] not in _officers(ctx.policy)
              or a.get("credential") is None or current[a["officer"]] != a["credential"]]
    approvals = [a for a in approvals if a not in lapsed]
    if any(a["officer"] == officer for a in approvals):
        raise LeadgateError(f"{officer} has already approved this item",
                            fix="a second, different officer must approve it")
    if approvals and (approvals[0]["team"], approvals[0]["rep"]) != (team, rep):
        raise LeadgateError(
            f"the first approval was for {approvals[0]['team']}/{approvals[0]['rep']}",
            fix="approve the same assignment, or reject the item and start again")
    if four_eyes and approvals:
        _independent(approvals[0], who, knowers)
    approvals.append({**who, "team": team, "rep": rep, "at": utcnow().isoformat()})
    complete = not four_eyes or len(approvals) >= 2
    action_id = str(ULID())
    subject = f"{row.source}:{row.record_id}"
    payload = {
        "action": "approve" if complete else "approve_pending_second_officer",
        "action_id": action_id, "item": row.id, "source": row.source,
        "record_id": row.record_id, "refused_decision_id": row.decision_id,
        "refusal_reason": row.reason, "team": team, "rep": rep, "rep_crm_id": crm_id,
        "override_of_licence_check": override, "authority": authority,
        "override_of_screening": screening_set_aside, "screening_now": screening,
        "four_eyes_required": four_eyes,
        "approvals": approvals, "lapsed_approvals": lapsed, "note_given": bool(note),
        "policy": {"id": ctx.policy.id, "version": ctx.policy.version,
                   "digest": ctx.policy.digest},
    }
    not_before = None
    if complete:  # the assignment happens now: so does the cooling-off it is under
        payload.update(_cooling_off_of_approval(ctx, lead, refused, now))
        not_before = (payload["cooling_off"] or {}).get("not_before")
    writeback = {
        "record_id": row.record_id, "decision_id": action_id, "outcome": "assigned",
        "owner_crm_id": crm_id, "reason": None, "policy_version": ctx.policy.version,
        # Conduct rules were not evaluated for a manual override: allow no outreach
        # channel automatically (fail closed). The officer's note stays in the ledger:
        # on the record sales would read why a list match was set aside (tipping off).
        "outreach": {"allowed_channels": [], "override": True},
        "not_before": not_before, "expected_owner": None,
    }
    taken = 0
    with write_transaction(ctx.engine) as conn:
        _unchanged(conn, row, approvals)  # this officer's approval is the last of them
        if complete:  # the rep's day count sees manual assignments, as caps should
            taken = count_assignment(conn, rep, day)
            payload["rep_assignments_today"] = taken + 1
            payload["rep_day"] = day.isoformat()  # given back if the write is not made
        ctx.ledger.append(conn, [_action_entry(subject, payload, note)])
        values: dict[str, Any] = {"approvals": dumps(approvals)}
        if complete:
            values.update(status="approved", resolved_at=utcnow(), lead_input=None,
                          resolved_by=",".join(a["officer"] for a in approvals))
            conn.execute(sa.insert(sync_decisions).values(
                source=row.source, record_id=row.record_id, episode=f"review:{action_id}",
                cause="review", decision_id=action_id, run_id=action_id,
                decided_at=utcnow(), outcome="assigned", reason=None, team_id=team,
                rep_id=rep, rotation_slot=None, decision=dumps(payload),
                writeback=dumps(writeback), writeback_status=PENDING,
                writeback_attempts=0))
        else:
            values.update(status="awaiting_second_officer")
        conn.execute(sa.update(sync_review_queue)
                     .where(sync_review_queue.c.id == row.id).values(**values))
    if not complete:
        overridden = []
        if screening_set_aside:
            overridden.append(f"a screening hit ({row.reason})")
        if override:
            why = "; ".join(authority["gaps"]) or f"the lead was refused as {row.reason}"
            overridden.append(f"a failed licence check ({why})")
        what = " and ".join(overridden)
        return (f"approval recorded ({action_id}); this overrides {what}, so a second "
                "officer must approve the same assignment")
    status = _write(ctx, row.source, source_cfg.kind, [ToWrite(
        row.record_id, action_id, "assigned", None, team, writeback, retry=False)])
    if status.startswith(CONFLICT):
        raise _not_written(row, status)
    cap = member.max_per_day
    over = (f"; note: {rep} is at {taken + 1} of {cap} assignments today"
            if cap is not None and taken + 1 > cap else "")
    return (f"approved: {subject} assigned to {team}/{rep} ({action_id}); CRM write "
            f"{status}{over}")


def _independent(first: dict[str, Any], second: dict[str, Any],
                 knowers: dict[str, set[str]]) -> None:
    """Four eyes are two people: not when either officer may know the other's token (one
    authorised the other's, directly or through officers whose tokens they authorised)."""
    for a, b in ((first, second), (second, first)):
        if a["officer"] in knowers.get(b["credential"], set()):
            raise LeadgateError(
                f"{b['officer']}'s token was issued on {a['officer']}'s authority, so the two "
                "approvals may be one person's", where="four eyes",
                fix=f"{b['officer']} replaces their token with their own (`leadgate review "
                    f"add-officer {b['officer']} --by {b['officer']}`) and approves again, or "
                    "another officer approves")


def _cooling_off_of_approval(ctx: Context, lead: Lead, refused: dict[str, Any],
                             at: datetime) -> dict[str, Any]:
    """The cooling-off an approval assigns the lead under (policy-spec.md, Cooling-off): an
    officer's approval assigns the lead, it does not shorten a statutory reflection or
    cancellation period. A lead refused for being inside its window keeps that window (one
    counted from the assignment counts from this approval). Any other refusal came before the
    window was worked out, so the policy's cooling_off rules are evaluated now, with this
    approval as the assignment, on the lead as the CRM holds it (`_lead_now`)."""
    window = refused.get("cooling_off")
    if window:
        if window.get("from") == "assignment":
            window = {**window, "anchor_at": iso(at),
                      "not_before": iso(at + timedelta(hours=window["hours"]))}
        return {"cooling_off": window}
    if not ctx.policy.cooling_off:
        return {"cooling_off": None}
    product = ctx.policy.products.get(lead.product) if lead.product else None
    found, tried = select_cooling_off(ctx.policy, lead, Facts(lead, product), at)
    return {"cooling_off": json_safe(found), "cooling_off_rules": rules_json(tried)}


def _lead_now(row: Any, source_cfg: Any) -> Lead:
    """The review item's lead, read from the CRM and normalised as a sync run would: the
    licence checks and the cooling-off of an approval are made on it. Fail closed: a lead that
    cannot be read or normalised cannot be approved (LeadgateError: no action is recorded,
    only the refused attempt)."""
    from connectors import open_connector

    where = f"review item {row.id}"
    try:
        connector = open_connector(source_cfg, source=row.source)
        try:
            found = connector.read([row.record_id])
        finally:
            connector.close()
    except LeadgateError as exc:
        cause = f"{exc.where}: {exc.message}" if exc.where else exc.message
        raise LeadgateError(
            "an approval is checked against the record as the CRM holds it, and "
            f"the CRM could not be read ({cause})", where=where,
            fix=f"{exc.fix + ', then ' if exc.fix else ''}approve again once the CRM can be "
                "read; no action was recorded") from exc
    if not found:
        raise LeadgateError(f"{row.source} record {row.record_id} is no longer in the CRM",
                            where=where, fix="reject the item")
    lead = normalise(row.source, row.record_id, found[0].lead_input, found[0].problems)
    if isinstance(lead, list):
        raise LeadgateError("the approval cannot be checked: the record as the CRM holds it "
                            f"now does not normalise: {'; '.join(lead)}",
                            where=where, fix="correct the record in the CRM and approve "
                                             "again, or reject the item")
    return lead


def reject(config: str | None, item: str, *, officer: str, token: str, note: str = "") -> str:
    ctx = open_context(config)
    try:
        ctx.ledger.check_signing_key()  # before anything is recorded: it is signed at once
        who = authenticate(ctx, officer, token, "reject")
        with ctx.engine.connect() as conn:
            row = _find(conn, item)
            _not_a_violation(conn, row, "reject")
        _, source_cfg = ctx.source(row.source)
        action_id = str(ULID())
        subject = f"{row.source}:{row.record_id}"
        payload = {"action": "reject", "action_id": action_id, "item": row.id,
                   "source": row.source, "record_id": row.record_id,
                   "refused_decision_id": row.decision_id, "refusal_reason": row.reason,
                   "officer": who, "note_given": bool(note)}
        writeback = {"record_id": row.record_id, "decision_id": action_id, "outcome": "refused",
                     "owner_crm_id": None, "reason": row.reason,
                     "policy_version": ctx.policy.version, "outreach": None,
                     "not_before": None, "expected_owner": None}
        with write_transaction(ctx.engine) as conn:
            _unchanged(conn, row, [who])
            ctx.ledger.append(conn, [_action_entry(subject, payload, note)])
            conn.execute(sa.update(sync_review_queue).where(sync_review_queue.c.id == row.id)
                         .values(status="rejected", resolved_at=utcnow(), lead_input=None,
                                 resolved_by=officer))
            conn.execute(sa.insert(sync_decisions).values(
                source=row.source, record_id=row.record_id, episode=f"review:{action_id}",
                cause="review", decision_id=action_id, run_id=action_id, decided_at=utcnow(),
                outcome="refused", reason=row.reason, team_id=None, rep_id=None,
                rotation_slot=None, decision=dumps(payload), writeback=dumps(writeback),
                writeback_status=PENDING, writeback_attempts=0))
        status = _write(ctx, row.source, source_cfg.kind, [ToWrite(
            row.record_id, action_id, "refused", row.reason, None, writeback, retry=False)])
        if status.startswith(CONFLICT):
            sign_or_warn(ctx.ledger, "the rejection is recorded")
            raise _not_written(row, status)
        return _signed(ctx, f"rejected: {subject} stays with compliance ({action_id}); "
                            f"CRM write {status}")
    finally:
        ctx.close()


def resolve(config: str | None, item: str, *, officer: str, token: str, note: str) -> str:
    """Close a cooling-off violation item with what was done about it (a `review_action`
    ledger entry with the officer and the note; nothing is written to the CRM)."""
    ctx = open_context(config)
    try:
        ctx.ledger.check_signing_key()  # before anything is recorded: it is signed at once
        who = authenticate(ctx, officer, token, "resolve")
        if not note.strip():
            raise LeadgateError("a violation is resolved with a note saying what was done",
                                where="--note", fix="pass --note \"...\"")
        with ctx.engine.connect() as conn:
            row = _find(conn, item)
            outcome = conn.execute(sa.select(sync_decisions.c.outcome).where(
                sync_decisions.c.decision_id == row.decision_id)).scalar()
        if _kind(row.reason, outcome) != "violation":
            raise LeadgateError(f"item {row.id} is a refusal, not a cooling-off violation",
                                where="review queue",
                                fix="use `leadgate review approve` or `leadgate review reject`")
        action_id = str(ULID())
        subject = f"{row.source}:{row.record_id}"
        payload = {"action": "resolve_violation", "action_id": action_id, "item": row.id,
                   "source": row.source, "record_id": row.record_id,
                   "decision_id": row.decision_id, "reason": row.reason, "officer": who,
                   "note_given": True}
        with write_transaction(ctx.engine) as conn:
            _unchanged(conn, row, [who])
            ctx.ledger.append(conn, [_action_entry(subject, payload, note)])
            conn.execute(sa.update(sync_review_queue).where(sync_review_queue.c.id == row.id)
                         .values(status="resolved", resolved_at=utcnow(), lead_input=None,
                                 resolved_by=officer))
        return _signed(ctx, f"resolved: the cooling-off violation of {subject} ({action_id})")
    finally:
        ctx.close()


class NotWritten(LeadgateError):
    """An officer's action was recorded but the CRM record was not written (exit 1)."""

    exit_code = 1


def _not_written(row: Any, status: str) -> NotWritten:
    """The record's owner was changed in the CRM after it was refused: a person took a lead
    that is with compliance, and the action was not written over them. `writeback.record`
    has reopened the item (as it does when a later run's retry meets the same); the officer
    is told (exit 1)."""
    return NotWritten(
        f"not written: {row.source}:{row.record_id} {status}; a person took this lead while it "
        f"was with compliance. Item {row.id} is open again (its approvals lapsed)",
        where=f"review item {row.id}",
        fix="find out who took it, move the record back to the compliance review queue in the "
            "CRM, then approve or reject it again")


def _write(ctx: Context, source: str, crm: str, items: list[ToWrite]) -> str:
    """Write back now; if the CRM is unreachable the next sync run retries it (still pending)."""
    from connectors import open_connector
    from sync import writeback

    # The action is recorded already: whatever fails from here on (the connector cannot even
    # be opened: a CA file gone) leaves the write pending, it does not undo the action.
    try:
        connector = open_connector(ctx.config.source(source), source=source)
    except LeadgateError as exc:
        return f"pending (next sync run retries it: {exc})"
    try:
        results = writeback.send(connector, items)
        rec = writeback.record(ctx.engine, ctx.ledger, source, crm, f"review-{items[0].decision_id}",
                               items, results)
    except LeadgateError as exc:
        return f"pending (next sync run retries it: {exc})"
    finally:
        connector.close()
    if rec.ok:
        return "ok"
    if rec.conflicts:
        return f"{CONFLICT} ({results[0].message})"
    if rec.gone:
        return "not made: the record is gone from the CRM (deleted, merged or converted)"
    return f"failed, retried by the next sync run ({results[0].message})"
