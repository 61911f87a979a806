"""The review queue through the real CLI: officer authentication, four eyes for a licence
override, approval and rejection written back to the CRM and recorded in the ledger; transient
refusals re-evaluated by later runs; the run digest to a loopback webhook."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from audit import schema as audit_schema
from sync.review import NOT_AN_ID
from sync.state import sync_decisions, sync_review_queue
from sync.writeahead import OPEN_STATUSES
from tests.integration.synctools import (
    check_invariants,
    crm_state,
    issue_token,
    leadgate,
    ledger_entries,
    return_to_intake,
    start_env,
    summary,
    sync_run,
)

ALICE_SF = "0058d00000Nw001AAB"


def _index(env: Any, crm: str, record_id: str) -> int:
    t = env.sb.store.leads if crm == "salesforce" else env.sb.store.contacts
    i = t.index_of(record_id)
    assert i is not None
    return int(i)


def _token(env: Any, officer: str) -> str:
    return issue_token(env, officer)  # authorised by the first officer issued one


def _mortgage_lead(country: str, status: str, first_contact: Any = None) -> dict[str, Any]:
    """CRM fields of a retail EU mortgage lead (the example policy's reflection period)."""
    fields: dict[str, Any] = {
        "Country": country, "State": None, "PostalCode": None,
        "Customer_Type__c": "Retail Customer", "Product_Interest__c": "EU Mortgage",
        "Status": status}
    if first_contact is not None:  # the sandbox keeps date-times as epoch milliseconds
        fields["First_Contact__c"] = int(first_contact.timestamp() * 1000)
    return fields


def _refused_item(env: Any, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Give the first intake lead these CRM fields, run a sync, and return the lead's index
    and its review item."""
    i = sorted(env.intake["salesforce"])[0]
    with env.sb.store.lock:
        env.sb.store.leads.set(i, fields)
    assert sync_run(env, "salesforce").returncode == 0
    record = env.sb.store.leads.get(i, "Id")
    items = json.loads(leadgate("review", "list", "--json", "--config",
                                str(env.config)).stdout)
    return i, next(x for x in items if x["record_id"] == record)


def test_review_approve_with_four_eyes_and_reject(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=200)
    try:
        assert sync_run(env, "salesforce").returncode == 0
        items = json.loads(leadgate("review", "list", "--json", "--config",
                                    str(env.config)).stdout)
        assert items and all(i["status"] == "open" for i in items)
        override = next(i for i in items if i["reason"] == "unlicensed_jurisdiction")
        other = next(i for i in items if i["id"] != override["id"])
        marta, kwame = _token(env, "cco-marta"), _token(env, "mlro-kwame")
        cfg = ["--config", str(env.config)]
        approve = ["review", "approve", str(override["id"]), "--team", "uk_retail", "--rep",
                   "alice", *cfg]

        # Not an officer of the policy / a wrong token: refused, one line, exit 2.
        bad = leadgate(*approve, "--officer", "someone", "--token", "x")
        assert bad.returncode == 2 and bad.stderr.startswith("error: ")
        bad = leadgate(*approve, "--officer", "cco-marta", "--token", "wrong")
        assert bad.returncode == 2 and "could not be authenticated" in bad.stderr

        first = leadgate(*approve, "--officer", "cco-marta", "--token", marta)
        assert first.returncode == 0, first.stderr
        assert "second officer" in first.stdout
        i = _index(env, "salesforce", override["record_id"])
        assert crm_state(env.sb, "salesforce", i)[1] == "refused"  # nothing assigned yet
        again = leadgate(*approve, "--officer", "cco-marta", "--token", marta)
        assert again.returncode == 2 and "already approved" in again.stderr
        second = leadgate(*approve, "--officer", "mlro-kwame", "--token", kwame)
        assert second.returncode == 0, second.stderr
        assert "CRM write ok" in second.stdout
        owner, status, stamp = crm_state(env.sb, "salesforce", i)
        assert (owner, status) == (ALICE_SF, "assigned")

        rej = leadgate("review", "reject", str(other["id"]), "--officer", "mlro-kwame",
                       "--token", kwame, "--note", "confirmed", *cfg)
        assert rej.returncode == 0, rej.stderr
        j = _index(env, "salesforce", other["record_id"])
        assert crm_state(env.sb, "salesforce", j)[:2] == (env.sb.store.review_queue_id,
                                                          "refused")

        engine = env.engine()
        actions = [e for e in ledger_entries(engine) if e["kind"] == "review_action"]
        with engine.connect() as conn:
            statuses = dict(conn.execute(sa.select(sync_review_queue.c.id,
                                                   sync_review_queue.c.status)).all())
        engine.dispose()
        assert [a["payload"]["action"] for a in actions] == [
            "approve_pending_second_officer", "approve", "reject"]
        assert actions[1]["payload"]["action_id"] == stamp
        assert {a["officer"] for a in actions[1]["payload"]["approvals"]} == {
            "cco-marta", "mlro-kwame"}
        assert statuses[override["id"]] == "approved" and statuses[other["id"]] == "rejected"
        check_invariants(env, "salesforce")
        # A later sync leaves officer decisions alone.
        assert summary(sync_run(env, "salesforce"))["decided"] == 0
        assert crm_state(env.sb, "salesforce", i)[:2] == (ALICE_SF, "assigned")
    finally:
        env.sb.stop()


def test_transient_refusals_are_re_evaluated_until_resolved(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=150)
    try:
        lists = tmp_path / "policy" / "lists"
        shutil.move(lists / "peps.csv", tmp_path / "peps.csv")  # screening service "down"
        s1 = summary(sync_run(env, "salesforce"))
        unavailable = s1["refused_by_reason"].get("screening_unavailable", 0)
        assert unavailable > 50 and s1["assigned"] == 0  # fail closed: nothing routed
        s2 = summary(sync_run(env, "salesforce"))  # still down: no new decisions
        assert s2["decided"] == 0 and s2["still_refused"] == unavailable
        shutil.move(tmp_path / "peps.csv", lists / "peps.csv")
        s3 = summary(sync_run(env, "salesforce"))
        assert s3["reevaluated"] == unavailable and s3["assigned"] > 0
        assert "screening_unavailable" not in s3["refused_by_reason"]
        check_invariants(env, "salesforce")
        engine = env.engine()
        with engine.connect() as conn:
            superseded = conn.execute(sa.select(sa.func.count()).select_from(sync_review_queue)
                                      .where(sync_review_queue.c.status == "superseded")
                                      ).scalar()
            kept = conn.execute(sa.select(sa.func.count()).select_from(sync_review_queue)
                                .where(sync_review_queue.c.lead_input.is_not(None))).scalar()
        engine.dispose()
        assert superseded == unavailable
        assert kept == s3["refused_by_reason"].get("no_available_rep", 0)
    finally:
        env.sb.stop()


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []
    down = False  # answer 503 and keep nothing

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        if not _Receiver.down:
            _Receiver.bodies.append(body)
        self.send_response(503 if _Receiver.down else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_one_digest_per_run_to_webhook_and_email_without_personal_data(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.bodies = []
    url = f"http://127.0.0.1:{server.server_port}/hooks/leadgate"
    env = start_env(tmp_path, leads=120, notify=[{"kind": "webhook", "url": url},
                                                 {"kind": "email", "to": ["ops@example.com"]}])
    try:
        s = summary(sync_run(env, "salesforce"))
        assert len(_Receiver.bodies) == 1
        body = _Receiver.bodies[0]
        assert body["new_refusals"] == s["refused"] > 0
        assert body["refused_by_reason"] == s["refused_by_reason"]
        emails = list((tmp_path / "leadgate-outbox").glob("*.eml"))
        assert len(emails) == 1
        text = json.dumps(body) + emails[0].read_text()
        t = env.sb.store.leads
        for i in sorted(env.intake["salesforce"])[:50]:
            for field in ("LastName", "Email", "Phone"):
                value = t.get(i, field)
                if value and len(str(value)) > 4:
                    assert str(value) not in text, f"personal data {field} in the digest"
        # Nothing new: no digest.
        sync_run(env, "salesforce")
        assert len(_Receiver.bodies) == 1
    finally:
        env.sb.stop()
        server.shutdown()


def test_a_webhook_is_named_by_its_host_never_by_its_secret_path(tmp_path: Path) -> None:
    # A Slack or Teams hook's path is its credential: the summary, the JSON for the
    # scheduler, the log and the database name the host only, and an {env: NAME} URL by NAME.
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.bodies, _Receiver.down = [], True
    secret = "T0001/B0002/s3cr3tXYZ"
    url = f"http://127.0.0.1:{server.server_port}/services/{secret}?key=q5ecretQ"
    env = start_env(tmp_path, leads=120, notify=[{"kind": "webhook", "url": url},
                                                 {"kind": "webhook", "url": {"env": "LG_HOOK"}}])
    run = ("sync", "run", "--config", str(env.config), "--source", "salesforce", "-vv")
    shown = f"webhook http://127.0.0.1:{server.server_port}/…"
    try:
        first = leadgate(*run, "--json", env={"LG_HOOK": ""})
        assert first.returncode == 0, first.stderr[-2000:]
        assert summary(first)["notify_errors"] == [
            f"{shown}: answered HTTP 503",
            "webhook $LG_HOOK: LG_HOOK is not set (export it where the job runs)"]
        _Receiver.down = False
        second = leadgate(*run, env={"LG_HOOK": url})
        assert second.returncode == 0, second.stderr[-2000:]
        assert f"digest sent to {shown}, webhook $LG_HOOK (with " in second.stdout
        assert len(_Receiver.bodies) == 2
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("leadgate.db*"))
        for text in (first.stdout + first.stderr, second.stdout + second.stderr,
                     stored.decode("latin-1")):
            assert "s3cr3tXYZ" not in text and "q5ecretQ" not in text
    finally:
        env.sb.stop()
        server.shutdown()


def _open_items(env: Any, after: int = 0) -> dict[int, tuple[str, str, bool]]:
    """Open review items of the Salesforce source made after item `after`: id -> (record id,
    reason, notified)."""
    q = sync_review_queue.c
    with env.engine().connect() as conn:
        return {r.id: (r.record_id, r.reason, r.notified) for r in conn.execute(
            sa.select(q.id, q.record_id, q.reason, q.notified)
            .where(q.source == "salesforce", q.id > after,
                   q.status.in_(OPEN_STATUSES)))}


def _earlier(body: dict[str, Any]) -> dict[str, str]:
    return {r["record_id"]: r["reason"] for r in body["earlier_unnotified"]}


def test_refusals_no_digest_reached_go_out_with_the_next_runs_digest(tmp_path: Path,
                                                                      any_url: str) -> None:
    """A notify target that is down, or a run killed before its digest, must not leave refusals
    the ops admin never hears of: the next run's digest carries them."""
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.bodies, _Receiver.down = [], True
    url = f"http://127.0.0.1:{server.server_port}/hooks/leadgate"
    env = start_env(tmp_path, leads=120, db_url=any_url,
                    notify=[{"kind": "webhook", "url": url}])
    try:
        # 1. The webhook is down: the run succeeds, says so, and notifies nothing.
        s1 = summary(sync_run(env, "salesforce"))
        assert s1["refused"] > 0 and s1["notify_errors"] and not s1["notified"]
        items = _open_items(env)
        assert items and not any(notified for _, _, notified in items.values())
        mark = max(items)
        # 2. Back up, nothing new pulled: the digest carries every open item of run 1.
        _Receiver.down = False
        s2 = summary(sync_run(env, "salesforce"))
        assert len(_Receiver.bodies) == 1
        body = _Receiver.bodies[0]
        expected = {record: reason for record, reason, _ in _open_items(env).values()}
        assert _earlier(body) == expected and body["earlier_unnotified_total"] == len(expected)
        assert sum(body["earlier_unnotified_by_reason"].values()) == len(expected)
        assert s2["notified_earlier"] == len(expected) > 0
        assert all(notified for _, _, notified in _open_items(env).values())
        sync_run(env, "salesforce")  # 3. nothing new, nothing unnotified: no digest
        assert len(_Receiver.bodies) == 1
        # 4. Leads back at intake; the run is killed right after its first write-ahead
        # commit, before any digest. The next run's digest lists exactly those refusals.
        mark = max(_open_items(env))
        return_to_intake(env, "salesforce", set(sorted(env.intake["salesforce"])[:60]))
        killed = sync_run(env, "salesforce", crash_at="committed:1")
        assert killed.returncode == -9, killed.stderr[-2000:]
        made = _open_items(env, after=mark)
        assert made and len(_Receiver.bodies) == 1
        s5 = summary(sync_run(env, "salesforce"))
        assert len(_Receiver.bodies) == 2
        body = _Receiver.bodies[1]
        assert _earlier(body) == {record: reason for record, reason, _ in made.values()}
        assert s5["notified_earlier"] == len(made)
        assert all(notified for _, _, notified in _open_items(env).values())
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()
        server.shutdown()


def test_approving_a_lead_refused_inside_its_cooling_off_keeps_the_window(
        tmp_path: Path) -> None:
    """An officer may assign a lead that was refused because it already sat at the blocked
    stage inside its reflection period; the approval must still send the period's end to the
    CRM (it assigns the lead, it does not shorten a statutory window)."""
    from datetime import UTC, datetime, timedelta

    from connectors.mapping import parse_crm_time

    env = start_env(tmp_path, leads=60)
    try:
        first_contact = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
        st = env.sb.store
        i, item = _refused_item(env, _mortgage_lead("LU", "proposal", first_contact))
        assert item["reason"] == "cooling_off_violation"
        window_end = first_contact + timedelta(hours=168)
        assert parse_crm_time(st.leads.get(i, "LeadGate_Not_Before__c")) == window_end

        token = _token(env, "cco-marta")
        approved = leadgate("review", "approve", str(item["id"]), "--team", "eu_mortgages",
                            "--rep", "daan", "--officer", "cco-marta", "--token", token,
                            "--config", str(env.config))
        assert approved.returncode == 0, approved.stderr
        assert "CRM write ok" in approved.stdout
        assert st.leads.get(i, "OwnerId") == "0058d00000Nw030AAB"
        assert parse_crm_time(st.leads.get(i, "LeadGate_Not_Before__c")) == window_end
        engine = sa.create_engine(env.db_url)
        action = [e for e in ledger_entries(engine) if e["kind"] == "review_action"][-1]
        engine.dispose()
        assert action["payload"]["cooling_off"]["id"] == "eu-mortgage-reflection"
    finally:
        env.sb.stop()


def test_approving_a_lead_refused_for_another_reason_works_out_its_cooling_off(
        tmp_path: Path) -> None:
    """A refusal before the cooling-off was evaluated (here: the only licence for Germany is
    not yet in force) recorded no window. The approval assigns the lead, so it works the
    window out then, on the lead as the CRM holds it: the reflection period reaches the CRM.
    A lead that no longer normalises cannot be approved (fail closed, nothing recorded)."""
    from datetime import UTC, datetime, timedelta

    from connectors.mapping import parse_crm_time

    env = start_env(tmp_path, leads=60)
    try:
        first_contact = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
        st = env.sb.store
        i, item = _refused_item(env, _mortgage_lead("DE", "Open - Not Contacted",
                                                    first_contact))
        assert item["reason"] not in ("cooling_off_violation", None)
        assert not st.leads.get(i, "LeadGate_Not_Before__c")

        cfg = ["--config", str(env.config)]
        approve = ["review", "approve", str(item["id"]), "--team", "eu_mortgages", "--rep",
                   "daan", *cfg]
        marta, kwame = _token(env, "cco-marta"), _token(env, "mlro-kwame")
        first = leadgate(*approve, "--officer", "cco-marta", "--token", marta)
        assert first.returncode == 0 and "second officer" in first.stdout, first.stderr

        with st.lock:  # the record changed in the CRM since: it no longer normalises
            st.leads.set(i, {"Country": "Atlantis"})
        refused = leadgate(*approve, "--officer", "mlro-kwame", "--token", kwame)
        assert refused.returncode == 2
        assert "the approval cannot be checked: the record as the CRM holds it now does not " \
            "normalise" in refused.stderr
        assert "Atlantis" in refused.stderr and "fix: correct the record" in refused.stderr
        assert st.leads.get(i, "OwnerId") != "0058d00000Nw030AAB"
        engine = sa.create_engine(env.db_url)
        with engine.connect() as conn:
            status = conn.execute(sa.select(sync_review_queue.c.status).where(
                sync_review_queue.c.id == item["id"])).scalar_one()
        assert status == "awaiting_second_officer"
        assert len([e for e in ledger_entries(engine) if e["kind"] == "review_action"]) == 1

        with st.lock:
            st.leads.set(i, {"Country": "DE"})
        second = leadgate(*approve, "--officer", "mlro-kwame", "--token", kwame)
        assert second.returncode == 0, second.stderr
        assert "CRM write ok" in second.stdout
        assert st.leads.get(i, "OwnerId") == "0058d00000Nw030AAB"
        window_end = first_contact + timedelta(hours=168)
        assert parse_crm_time(st.leads.get(i, "LeadGate_Not_Before__c")) == window_end
        action = [e for e in ledger_entries(engine) if e["kind"] == "review_action"][-1]
        engine.dispose()
        assert action["payload"]["action"] == "approve"
        assert action["payload"]["cooling_off"]["id"] == "eu-mortgage-reflection"
        assert action["payload"]["cooling_off"]["not_before"] == window_end.strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        tried = {r["id"]: r["result"] for r in action["payload"]["cooling_off_rules"]}
        assert tried["eu-mortgage-reflection"] is True
        assert tried["uk-protection-cancellation"] is False
    finally:
        env.sb.stop()


def test_a_window_counted_from_the_assignment_counts_from_the_approval(tmp_path: Path) -> None:
    """UK protection's cancellation period runs from the assignment. A lead refused for
    sitting at closed_won inside it is assigned by the officer's approval: the window starts
    then, not at the refusal."""
    from datetime import UTC, datetime, timedelta

    from connectors.mapping import parse_crm_time

    env = start_env(tmp_path, leads=60)
    try:
        st = env.sb.store
        i, item = _refused_item(env, {
            "Country": "GB", "State": None, "PostalCode": None,
            "Customer_Type__c": "Retail Customer", "Product_Interest__c": "Term Life",
            "Status": "closed_won"})
        assert item["reason"] == "cooling_off_violation"
        refused_end = parse_crm_time(st.leads.get(i, "LeadGate_Not_Before__c"))

        # The CRM's field holds whole seconds: an approval within this second may end its
        # window at this second + 720 h.
        before = datetime.now(UTC).replace(microsecond=0)
        approved = leadgate("review", "approve", str(item["id"]), "--team", "uk_retail",
                            "--rep", "alice", "--officer", "cco-marta",
                            "--token", _token(env, "cco-marta"), "--config", str(env.config))
        assert approved.returncode == 0, approved.stderr
        window_end = parse_crm_time(st.leads.get(i, "LeadGate_Not_Before__c"))
        assert before + timedelta(hours=720) <= window_end <= datetime.now(UTC) + timedelta(
            hours=720)
        assert window_end > refused_end
        engine = sa.create_engine(env.db_url)
        action = [e for e in ledger_entries(engine) if e["kind"] == "review_action"][-1]
        engine.dispose()
        window = action["payload"]["cooling_off"]
        assert (window["id"], window["from"]) == ("uk-protection-cancellation", "assignment")
        assert parse_crm_time(window["anchor_at"]) >= before
    finally:
        env.sb.stop()


def test_an_approval_that_cannot_read_the_crm_records_nothing(tmp_path: Path) -> None:
    """Without the record there is no checking its licences and cooling-off: with the CRM gone
    the approval is refused in one line saying so, and the item waits as it was."""
    env = start_env(tmp_path, leads=60)
    stopped = False
    try:
        _, item = _refused_item(env, _mortgage_lead("DE", "Open - Not Contacted"))
        approve = ["review", "approve", str(item["id"]), "--team", "eu_mortgages", "--rep",
                   "daan", "--config", str(env.config)]
        first = leadgate(*approve, "--officer", "cco-marta", "--token",
                         _token(env, "cco-marta"))
        assert first.returncode == 0 and "second officer" in first.stdout, first.stderr
        kwame = _token(env, "mlro-kwame")
        env.sb.stop()
        stopped = True
        second = leadgate(*approve, "--officer", "mlro-kwame", "--token", kwame)
        assert second.returncode == 2
        error = second.stderr.strip()
        assert len(error.splitlines()) == 1 and "Traceback" not in error
        assert f"review item {item['id']}: an approval is checked against the record as the " \
               "CRM holds it, and the CRM could not be read" in error
        assert "no action was recorded" in error
        engine = sa.create_engine(env.db_url)
        with engine.connect() as conn:
            status = conn.execute(sa.select(sync_review_queue.c.status).where(
                sync_review_queue.c.id == item["id"])).scalar_one()
        actions = [e for e in ledger_entries(engine) if e["kind"] == "review_action"]
        engine.dispose()
        assert status == "awaiting_second_officer" and len(actions) == 1
    finally:
        if not stopped:
            env.sb.stop()


def test_an_approval_to_a_rep_without_the_individual_licence_is_a_four_eyes_override(
        tmp_path: Path) -> None:
    """The team holds the licence, the chosen agent holds no producer licence for the lead's
    state: the routing core would never pick that agent, so the officer's choice is an override
    of a failed licence check (two officers), and the ledger says which licence was missing.
    Setting the PEP hit aside for a licensed agent takes two officers as well."""
    env = start_env(tmp_path, leads=60)
    try:
        st, cfg = env.sb.store, ("--config", str(env.config))
        pep_nj = {"FirstName": "Evander", "LastName": "Quillfeather", "Country": "US",
                  "State": "NJ", "PostalCode": None, "Customer_Type__c": "Retail Customer",
                  "Product_Interest__c": "Term Life", "LeadSource": "Referral",
                  "Status": "Open - Not Contacted"}
        first, second = sorted(env.intake["salesforce"])[:2]
        with st.lock:
            for i in (first, second):
                st.leads.set(i, pep_nj)
        assert sync_run(env, "salesforce").returncode == 0
        records = {st.leads.get(i, "Id"): i for i in (first, second)}
        items = [x for x in json.loads(leadgate("review", "list", "--json", *cfg).stdout)
                 if x["record_id"] in records]
        assert sorted(x["reason"] for x in items) == ["pep", "pep"]
        marta = _token(env, "cco-marta")
        by = ("--officer", "cco-marta", "--token", marta)

        # adam holds a New York producer licence only
        adam = leadgate("review", "approve", str(items[0]["id"]), "--team", "us_life_tristate",
                        "--rep", "adam", *by, *cfg)
        assert adam.returncode == 0, adam.stderr
        assert "second officer" in adam.stdout
        assert crm_state(env.sb, "salesforce", records[items[0]["record_id"]])[1] == "refused"
        # both things the officers set aside are named: the PEP hit and the licence gap
        assert "overrides a screening hit (pep) and a failed licence check (adam holds no " \
            "valid individual licence for US-NJ / term_life / retail)" in adam.stdout
        # beth holds New Jersey's: licensed, but setting a PEP hit aside takes two officers too
        beth = ("review", "approve", str(items[1]["id"]), "--team", "us_life_tristate",
                "--rep", "beth", *cfg)
        once = leadgate(*beth, *by)
        assert once.returncode == 0, once.stderr
        assert "this overrides a screening hit (pep), so a second officer" in once.stdout
        twice = leadgate(*beth, "--officer", "mlro-kwame", "--token",
                         _token(env, "mlro-kwame"))
        assert twice.returncode == 0, twice.stderr
        assert "CRM write ok" in twice.stdout

        engine = env.engine()
        actions = {e["payload"]["item"]: e["payload"] for e in ledger_entries(engine)
                   if e["kind"] == "review_action"}
        engine.dispose()
        pending, done = actions[items[0]["id"]], actions[items[1]["id"]]
        assert pending["action"] == "approve_pending_second_officer"
        assert pending["override_of_licence_check"] and pending["four_eyes_required"]
        assert pending["authority"] == {
            "team_licence": "NJ-AGY-1902233", "rep_licence": None, "licensed": False,
            "rep_available": True, "team_why": pending["authority"]["team_why"],
            "gaps": ["adam holds no valid individual licence for US-NJ / term_life / retail"]}
        assert done["action"] == "approve" and not done["override_of_licence_check"]
        assert done["override_of_screening"] and done["four_eyes_required"]
        assert [a["officer"] for a in done["approvals"]] == ["cco-marta", "mlro-kwame"]
        assert done["authority"]["rep_licence"] == "NJ-PR-3310442"
        assert done["authority"]["licensed"] is True
    finally:
        env.sb.stop()


def test_a_lead_that_was_never_screened_cannot_be_approved(tmp_path: Path) -> None:
    """Screening could not run, or the record did not normalise (refused before screening):
    an officer's approval would assign a lead nobody screened against sanctions and PEPs."""
    env = start_env(tmp_path, leads=40)
    try:
        cfg = ("--config", str(env.config))
        st = env.sb.store
        broken = sorted(env.intake["salesforce"])[0]
        with st.lock:
            st.leads.set(broken, {"Country": "Atlantis", "State": None})
        assert sync_run(env, "salesforce").returncode == 0
        engine = env.engine()
        decisions = [e["payload"] for e in ledger_entries(engine) if e["kind"] == "decision"]
        engine.dispose()
        # what the approval's check relies on: invalid leads alone are decided unscreened
        assert {d["reason"] == "invalid_lead" for d in decisions} == {True, False}
        assert all(bool(d["screening"]) == (d["reason"] != "invalid_lead") for d in decisions)
        invalid = next(x for x in json.loads(leadgate("review", "list", "--json", *cfg).stdout)
                       if x["record_id"] == st.leads.get(broken, "Id"))
        assert invalid["reason"] == "invalid_lead"
        with st.lock:  # corrected in the CRM since; still never screened
            st.leads.set(broken, {"Country": "GB", "Customer_Type__c": "Retail Customer",
                                  "Product_Interest__c": "Easy Saver"})

        lists = tmp_path / "policy" / "lists"
        shutil.move(lists / "peps.csv", tmp_path / "peps.csv")  # screening service "down"
        return_to_intake(env, "salesforce", set(sorted(env.intake["salesforce"])[1:20]))
        assert sync_run(env, "salesforce").returncode == 0
        unscreened = next(x for x in json.loads(leadgate("review", "list", "--json",
                                                         *cfg).stdout)
                          if x["reason"] == "screening_unavailable")
        token = _token(env, "cco-marta")
        for item, why, fix in (
                (unscreened, "screening was unavailable",
                 "let the next `leadgate sync run` screen it again once the lists load,"),
                (invalid, "its record did not normalise, and was refused before screening",
                 "correct the record in the CRM and send it back to intake (the intake queue "
                 "as owner, leadgate's status cleared) so the job decides it, screening "
                 "included;")):
            proc = leadgate("review", "approve", str(item["id"]), "--team", "uk_retail",
                            "--rep", "alice", "--officer", "cco-marta", "--token", token, *cfg)
            assert proc.returncode == 2
            assert proc.stderr == (
                f"error: review queue: item {item['id']}: the lead was never screened ({why}), "
                f"so it cannot be approved (fix: {fix} or reject it with `leadgate review "
                f"reject {item['id']}`)\n"), proc.stderr
        engine = env.engine()
        assert not [e for e in ledger_entries(engine) if e["kind"] == "review_action"]
        engine.dispose()
    finally:
        env.sb.stop()


def test_a_lead_its_team_could_serve_still_needs_a_licensed_rep(tmp_path: Path) -> None:
    """Refused for no_available_rep, the team was eligible: every agent licensed for New Jersey
    is away. Approving the one agent who is free but holds New York's licence only must not
    pass as an ordinary approval because the team was licensed."""
    env = start_env(tmp_path, leads=60)
    try:
        teams = env.folder / "policy" / "23-teams-us.yaml"
        text = teams.read_text()
        for rep in ("beth", "carlos", "ethan", "gina"):  # the New Jersey producers
            assert f"      - id: {rep}\n" in text
            text = text.replace(f"      - id: {rep}\n",
                                f"      - id: {rep}\n        available: false\n", 1)
        teams.write_text(text)
        st, cfg = env.sb.store, ("--config", str(env.config))
        i = sorted(env.intake["salesforce"])[0]
        with st.lock:
            st.leads.set(i, {"Country": "US", "State": "NJ", "PostalCode": None,
                             "Customer_Type__c": "Retail Customer",
                             "Product_Interest__c": "Term Life", "LeadSource": "Referral",
                             "Status": "Open - Not Contacted"})
        assert sync_run(env, "salesforce").returncode == 0
        record = st.leads.get(i, "Id")
        item = next(x for x in json.loads(leadgate("review", "list", "--json", *cfg).stdout)
                    if x["record_id"] == record)
        assert item["reason"] == "no_available_rep"
        approve = leadgate("review", "approve", str(item["id"]), "--team", "us_life_tristate",
                           "--rep", "adam", "--officer", "cco-marta", "--token",
                           _token(env, "cco-marta"), *cfg)
        assert approve.returncode == 0, approve.stderr
        assert "overrides a failed licence check (adam holds no valid individual licence for " \
            "US-NJ / term_life / retail), so a second officer must approve" in approve.stdout
        assert crm_state(env.sb, "salesforce", i)[1] == "refused"  # not assigned on one word
    finally:
        env.sb.stop()


def test_a_name_typed_where_an_id_belongs_is_not_written_into_the_ledger(
        tmp_path: Path) -> None:
    """A refused approval is recorded (who asked for what), but only ids go in clear: a
    customer's name typed as the item or as the rep is sealed with the lead, or not kept."""
    env = start_env(tmp_path, leads=120)
    try:
        cfg = ("--config", str(env.config))
        [item, *_] = _plain_refusals(env)
        token = _token(env, "cco-marta")
        typed = "Zedekiah Fictionalson"
        for where, rep in ((typed, "alice"), (str(item["id"]), typed)):
            proc = leadgate("review", "approve", where, "--team", "uk_retail", "--rep", rep,
                            "--officer", "cco-marta", "--token", token, *cfg)
            assert proc.returncode == 2, proc.stderr
        engine = env.engine()
        attempts = [e for e in ledger_entries(engine) if e["kind"] == "officer_action_refused"]
        with engine.connect() as conn:
            bodies = b"".join(bytes(b) for b in conn.execute(
                sa.select(audit_schema.entries.c.body)).scalars())
        engine.dispose()
        assert b"Zedekiah" not in bodies  # neither in a payload nor anywhere else in clear
        no_item, wrong_rep = attempts
        assert no_item["subject"] is None and no_item["payload"]["item"] == NOT_AN_ID
        assert no_item["payload"]["why"] == "no open review item of the id given"
        assert no_item["payload"]["asked"] == {"team": "uk_retail", "rep": "alice"}
        assert wrong_rep["subject"] == f"salesforce:{item['record_id']}"
        assert wrong_rep["payload"]["asked"] == {"team": "uk_retail", "rep": NOT_AN_ID}
        assert wrong_rep["personal"] is not None  # what was typed, sealed with the lead
    finally:
        env.sb.stop()


def test_an_approval_screens_the_lead_again_as_the_crm_holds_it_now(tmp_path: Path) -> None:
    """Screened clean when it was decided, renamed in the CRM since: the name is now a PEP's.
    No officer has considered that hit, so the approval is refused; and lists that cannot be
    read stop an approval as they stop a run."""
    env = start_env(tmp_path, leads=120)
    try:
        cfg = ("--config", str(env.config))
        items = _plain_refusals(env)
        assert len(items) >= 2
        renamed, other = items[:2]
        st = env.sb.store
        with st.lock:
            st.leads.set(st.leads.index_of(renamed["record_id"]),
                         {"FirstName": "Evander", "LastName": "Quillfeather"})
        token = _token(env, "cco-marta")

        def approve(item: dict[str, Any]) -> Any:
            return leadgate("review", "approve", str(item["id"]), "--team", "uk_retail",
                            "--rep", "alice", "--officer", "cco-marta", "--token", token, *cfg)

        proc = approve(renamed)
        assert proc.returncode == 2
        assert proc.stderr.startswith(
            f"error: review queue: item {renamed['id']}: the lead as the CRM holds it now is "
            "a screening hit (pep hit on list "), proc.stderr
        assert f"that its refusal ({renamed['reason']}) did not consider, so it cannot be " \
            "approved (fix: send it back to intake" in proc.stderr
        assert "Quillfeather" not in proc.stderr  # the hit is named by list, not by person
        engine = env.engine()
        [attempt] = [e for e in ledger_entries(engine) if e["kind"] == "officer_action_refused"]
        engine.dispose()
        # the attempt is on the lead's record, with who asked for what; its reason is sealed
        assert attempt["subject"] == f"salesforce:{renamed['record_id']}"
        assert attempt["payload"]["officer"]["officer"] == "cco-marta"
        assert attempt["payload"]["asked"] == {"team": "uk_retail", "rep": "alice"}
        assert attempt["personal"] is not None and "why" not in attempt["payload"]

        lists = tmp_path / "policy" / "lists"
        shutil.move(lists / "peps.csv", tmp_path / "peps.csv")  # screening "down"
        proc = approve(other)
        assert proc.returncode == 2
        assert f"item {other['id']}: the lead cannot be screened now" in proc.stderr
        assert "approve again once the screening lists load; no action was recorded" in \
            proc.stderr
        assert proc.stderr.count("\n") == 1
        engine = env.engine()
        assert not [e for e in ledger_entries(engine) if e["kind"] == "review_action"]
        engine.dispose()
        shutil.move(tmp_path / "peps.csv", lists / "peps.csv")  # back: the approval goes on
        done = approve(other)
        assert done.returncode == 0, done.stderr
        engine = env.engine()
        [action] = [e["payload"] for e in ledger_entries(engine) if e["kind"] == "review_action"]
        engine.dispose()
        assert {r["check"] for r in action["screening_now"]} >= {"pep"}
        assert not any(r["hit"] for r in action["screening_now"])
    finally:
        env.sb.stop()


def test_a_screening_refusal_whose_lead_is_now_another_kind_of_hit_cannot_be_approved(
        tmp_path: Path) -> None:
    """Refused as a PEP, renamed in the CRM since to a name on the sanctions lists, or to
    another PEP: the officers set aside the PEP entry it matched, not a hit nobody has looked
    at."""
    env = start_env(tmp_path, leads=40)
    try:
        cfg = ("--config", str(env.config))
        i, item = _refused_item(env, {"FirstName": "Evander", "LastName": "Quillfeather"})
        assert item["reason"] == "pep"
        token = _token(env, "cco-marta")

        def approve() -> Any:
            return leadgate("review", "approve", str(item["id"]), "--team", "uk_retail",
                            "--rep", "alice", "--officer", "cco-marta", "--token", token, *cfg)

        with env.sb.store.lock:
            env.sb.store.leads.set(i, {"FirstName": "Taras Ilvenovich", "LastName": "Karvossen"})
        proc = approve()
        assert proc.returncode == 2
        assert "is a screening hit (sanctions hit on list ofac_sdn, sanctions hit on list " \
            "uk_ofsi) that its refusal (pep) did not consider" in proc.stderr, proc.stderr
        assert "Karvossen" not in proc.stderr
        engine = env.engine()
        assert not [e for e in ledger_entries(engine) if e["kind"] == "review_action"]
        engine.dispose()
        # another PEP: the same kind of hit on another entry, which nobody has looked at either
        with env.sb.store.lock:
            env.sb.store.leads.set(i, {"FirstName": "Marguerite",
                                       "LastName": "Oosterbrand-Velle"})
        proc = approve()
        assert proc.returncode == 2
        assert "is a screening hit (pep hit on list " in proc.stderr, proc.stderr
        assert "that its refusal (pep) did not consider" in proc.stderr
        assert "Oosterbrand" not in proc.stderr
        # still the PEP it was refused as: the officers may set that hit aside, four eyes
        with env.sb.store.lock:
            env.sb.store.leads.set(i, {"FirstName": "Evander", "LastName": "Quillfeather"})
        first = approve()
        assert first.returncode == 0, first.stderr
        assert "this overrides a screening hit (pep)" in first.stdout
    finally:
        env.sb.stop()


def test_a_rejection_the_crm_cannot_take_now_is_recorded_and_says_so(tmp_path: Path) -> None:
    """The rejection is the officer's decision, recorded before the CRM is written: a CRM that
    cannot even be connected to (its CA file gone with the sandbox) leaves the write pending,
    exit 0, never "failed" for an action that stands."""
    env = start_env(tmp_path, leads=40)
    try:
        cfg = ("--config", str(env.config))
        assert sync_run(env, "salesforce").returncode == 0
        item = json.loads(leadgate("review", "list", "--json", *cfg).stdout)[0]
        token = _token(env, "cco-marta")
    finally:
        env.sb.stop()
    rej = leadgate("review", "reject", str(item["id"]), "--officer", "cco-marta", "--token",
                   token, "--note", "confirmed", *cfg)
    assert rej.returncode == 0, rej.stderr
    assert "CRM write pending (next sync run retries it: " in rej.stdout, rej.stdout
    engine = env.engine()
    [action] = [e["payload"] for e in ledger_entries(engine) if e["kind"] == "review_action"]
    engine.dispose()
    assert action["action"] == "reject" and action["item"] == item["id"]
    again = leadgate("review", "reject", str(item["id"]), "--officer", "cco-marta", "--token",
                     token, *cfg)
    assert again.returncode == 2 and f"no open review item '{item['id']}'" in again.stderr


def test_officer_actions_on_hubspot_contacts(tmp_path: Path) -> None:
    """The same review workflow on HubSpot: the approval re-reads the contact through the
    HubSpot connector, screens and checks it, and the owner is written; a rejection leaves the
    contact with the review owner."""
    env = start_env(tmp_path, leads=10, contacts=120)
    try:
        cfg = ("--config", str(env.config))
        st = env.sb.store
        contacts = sorted(env.intake["hubspot"])[:2]
        with st.lock:  # a complex product without an appropriateness assessment: gated
            for i in contacts:
                st.contacts.set(i, {"country": "UK", "state": None,
                                    "customer_type": "Retail Customer",
                                    "product_interest": "Structured Note",
                                    "appropriateness": None})
        assert sync_run(env, "hubspot").returncode == 0
        items = {x["record_id"]: x for x in json.loads(leadgate("review", "list", "--json",
                                                                *cfg).stdout)}
        mine = [items[str(st.contacts.id_of(i))] for i in contacts]
        assert [x["reason"] for x in mine] == ["suitability_gate", "suitability_gate"]
        marta, kwame = _token(env, "cco-marta"), _token(env, "mlro-kwame")
        # uk_retail's licence does not cover structured notes: an override, two officers
        approve = ("review", "approve", str(mine[0]["id"]), "--team", "uk_retail", "--rep",
                   "alice", *cfg)
        once = leadgate(*approve, "--officer", "cco-marta", "--token", marta)
        assert once.returncode == 0 and "second officer" in once.stdout, once.stderr
        assert "does not cover product structured_note" in once.stdout
        twice = leadgate(*approve, "--officer", "mlro-kwame", "--token", kwame)
        assert twice.returncode == 0 and "CRM write ok" in twice.stdout, twice.stderr
        assert crm_state(env.sb, "hubspot", contacts[0])[:2] == ("71001", "assigned")
        rejected = leadgate("review", "reject", str(mine[1]["id"]), "--officer", "cco-marta",
                            "--token", marta, "--note", "confirmed", *cfg)
        assert rejected.returncode == 0 and "CRM write ok" in rejected.stdout, rejected.stderr
        assert crm_state(env.sb, "hubspot", contacts[1])[:2] == (
            str(env.sb.hubspot_review_owner_id), "refused")
        check_invariants(env, "hubspot")
    finally:
        env.sb.stop()


def test_an_approval_counts_toward_the_reps_day(tmp_path: Path) -> None:
    """A rep's daily cap is a workload limit: an assignment an officer made counts in it like
    the job's own, and an officer who assigns beyond it is told so."""
    from sync.state import sync_daily_counts

    env = start_env(tmp_path, leads=120)
    try:
        teams = env.folder / "policy" / "20-teams-uk.yaml"
        text = teams.read_text()
        at = text.index("      - id: ellie\n")
        cap = text.index("        max_per_day: 25\n", at)  # ellie's: no lead for her today
        teams.write_text(text[:cap] + "        max_per_day: 0\n"
                         + text[cap + len("        max_per_day: 25\n"):])
        cfg = ("--config", str(env.config))
        item = _plain_refusals(env)[0]
        approve = ("review", "approve", str(item["id"]), "--team", "uk_retail", "--rep",
                   "ellie", *cfg)
        once = leadgate(*approve, "--officer", "cco-marta", "--token", _token(env, "cco-marta"))
        assert once.returncode == 0, once.stderr
        done = once if "CRM write" in once.stdout else leadgate(
            *approve, "--officer", "mlro-kwame", "--token", _token(env, "mlro-kwame"))
        assert done.returncode == 0 and "CRM write ok" in done.stdout, done.stderr
        assert "note: ellie is at 1 of 0 assignments today" in done.stdout
        engine = env.engine()
        with engine.connect() as conn:
            counts = dict(conn.execute(sa.select(sync_daily_counts.c.rep_id,
                                                 sync_daily_counts.c.count)).all())
        [action] = [e["payload"] for e in ledger_entries(engine)
                    if e["kind"] == "review_action" and e["payload"]["action"] == "approve"]
        engine.dispose()
        assert counts["ellie"] == 1 == action["rep_assignments_today"]
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


def _plain_refusals(env: Any) -> list[dict[str, Any]]:
    """Sync Salesforce, and return the open refusals an officer can approve to uk_retail
    without overriding a licence check or a screening hit (no rule matched, a gate)."""
    assert sync_run(env, "salesforce").returncode == 0
    items = json.loads(leadgate("review", "list", "--json", "--config", str(env.config)).stdout)
    return [x for x in items if x["reason"] in ("no_rule_matched", "suitability_gate")]


def _day_count(engine: sa.Engine, rep: str) -> int:
    from sync.state import sync_daily_counts

    with engine.connect() as conn:
        return int(conn.execute(sa.select(sync_daily_counts.c.count).where(
            sync_daily_counts.c.rep_id == rep)).scalar() or 0)


def _approve_to(env: Any, item: dict[str, Any], rep: str, tokens: dict[str, str],
                *extra: str) -> Any:
    """cco-marta approves the item to uk_retail/rep, and mlro-kwame too when four eyes are
    needed; the last command's result."""
    def approve(officer: str) -> Any:
        return leadgate("review", "approve", str(item["id"]), "--team", "uk_retail", "--rep",
                        rep, "--officer", officer, "--token", tokens[officer], *extra,
                        "--config", str(env.config))

    done = approve("cco-marta")
    return approve("mlro-kwame") if "second officer" in done.stdout else done


def test_an_action_on_a_lead_a_person_took_meanwhile_is_not_written_and_reopens_the_item(
        tmp_path: Path) -> None:
    """A refused lead whose owner a person changed in the CRM while it waited: the approval
    was recorded as done and the item closed, though the CRM was not written (a conflict)
    and the lead stayed with that person. Now the officer is told (exit 1), the item is open
    again and the rep's day is given back; once the record is back with compliance, the
    same approval is written."""
    env = start_env(tmp_path, leads=120)
    try:
        cfg = ("--config", str(env.config))
        items = _plain_refusals(env)
        item, other = items[0], items[1]
        taker = "0058d00000Nw013AAB"  # a sales rep took the leads in the CRM
        for x in (item, other):
            with env.sb.store.lock:
                env.sb.store.leads.set(_index(env, "salesforce", x["record_id"]),
                                       {"OwnerId": taker})
        tokens = {o: _token(env, o) for o in ("cco-marta", "mlro-kwame")}
        engine = env.engine()
        before = _day_count(engine, "ellie")

        refused = _approve_to(env, item, "ellie", tokens)
        assert refused.returncode == 1, (refused.stdout, refused.stderr)
        assert refused.stderr.startswith("error: ") and "not written" in refused.stderr
        assert f"owner changed to {taker}" in refused.stderr
        i = _index(env, "salesforce", item["record_id"])
        assert crm_state(env.sb, "salesforce", i)[0] == taker  # not written over the person
        with engine.connect() as conn:
            status = conn.execute(sa.select(sync_review_queue.c.status).where(
                sync_review_queue.c.id == item["id"])).scalar_one()
        actions = [e["payload"]["action"] for e in ledger_entries(engine)
                   if e["kind"] == "review_action"]
        assert status == "open" and _day_count(engine, "ellie") == before
        assert actions[-1] == "reopen_not_written"

        rejected = leadgate("review", "reject", str(other["id"]), "--officer", "cco-marta",
                            "--token", tokens["cco-marta"], "--note", "n", *cfg)
        assert rejected.returncode == 1 and "not written" in rejected.stderr

        with env.sb.store.lock:  # compliance takes the lead back; the approval now goes through
            env.sb.store.leads.set(i, {"OwnerId": env.sb.store.review_queue_id})
        again = _approve_to(env, item, "ellie", tokens)
        assert again.returncode == 0 and "CRM write ok" in again.stdout, again.stderr
        assert crm_state(env.sb, "salesforce", i)[1] == "assigned"
        assert _day_count(engine, "ellie") == before + 1
        engine.dispose()
    finally:
        env.sb.stop()


def test_a_retried_approval_that_meets_a_person_reopens_the_item_too(tmp_path: Path) -> None:
    """The approval's first write failed (a locked row), so the next run retries it; a person
    took the lead meanwhile. The retry is a conflict, and the item was left `approved` with the
    rep's day used, the lead with that person and nobody told."""
    env = start_env(tmp_path, leads=120)
    try:
        item = _plain_refusals(env)[0]
        tokens = {o: _token(env, o) for o in ("cco-marta", "mlro-kwame")}
        engine = env.engine()
        before = _day_count(engine, "ellie")
        env.sb.faults = "salesforce.*update*:record_error"  # every record write fails now
        done = _approve_to(env, item, "ellie", tokens)
        assert done.returncode == 0 and "retried by the next sync run" in done.stdout, done
        assert _day_count(engine, "ellie") == before + 1
        env.sb.faults = None
        i = _index(env, "salesforce", item["record_id"])
        taker = "0058d00000Nw013AAB"
        with env.sb.store.lock:
            env.sb.store.leads.set(i, {"OwnerId": taker})
        run = sync_run(env, "salesforce")
        assert run.returncode == 0, run.stderr
        assert summary(run)["conflicts"] >= 1
        with engine.connect() as conn:
            status = conn.execute(sa.select(sync_review_queue.c.status).where(
                sync_review_queue.c.id == item["id"])).scalar_one()
        actions = [e["payload"] for e in ledger_entries(engine) if e["kind"] == "review_action"]
        assert (status, crm_state(env.sb, "salesforce", i)[0]) == ("open", taker)
        assert actions[-1]["action"] == "reopen_not_written"
        assert actions[-1]["not_written_action_id"] == actions[-2]["action_id"]
        assert _day_count(engine, "ellie") == before
        engine.dispose()
    finally:
        env.sb.stop()


def test_an_approval_to_an_unavailable_rep_is_refused_and_no_note_reaches_the_crm(
        tmp_path: Path) -> None:
    """The policy marks carol unavailable: she got the lead and the officer was told after
    the write. And the officer's note, which may say why a list match was set aside, was
    written on the CRM record, where sales read it."""
    env = start_env(tmp_path, leads=120)
    try:
        teams = (env.folder / "policy" / "20-teams-uk.yaml").read_text()
        assert "available: false" in teams[teams.index("id: carol"):][:400]
        item = _plain_refusals(env)[0]
        tokens = {o: _token(env, o) for o in ("cco-marta", "mlro-kwame")}
        note = ("--note", "cleared: namesake, DOB differs")
        away = _approve_to(env, item, "carol", tokens, *note)
        assert away.returncode == 2 and "'carol' is marked unavailable" in away.stderr
        i = _index(env, "salesforce", item["record_id"])
        assert crm_state(env.sb, "salesforce", i)[1] == "refused"
        done = _approve_to(env, item, "alice", tokens, *note)
        assert done.returncode == 0 and "CRM write ok" in done.stdout, done.stderr
        record = env.sb.store.leads
        assert "namesake" not in json.dumps([record.get(i, f) for f in record.fields], default=str)
        # The note may name the customer: sealed with their personal data, nowhere in clear
        # (not in the ledger's payloads, not in the decision row, not in the database file).
        engine = env.engine()
        entries = ledger_entries(engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sync_decisions.c.decision)).scalars().all()
        engine.dispose()
        assert not any("namesake" in json.dumps(e) for e in entries)
        assert not any("namesake" in str(r) for r in rows)
        db_files = [f for f in env.folder.iterdir() if f.name.startswith("leadgate.db")]
        assert db_files and not any(b"namesake" in f.read_bytes() for f in db_files)
        approved = [e for e in entries if e["kind"] == "review_action"
                    and e["payload"]["action"] == "approve"]
        assert len(approved) == 1 and approved[0]["payload"]["note_given"] is True
        subject = f"salesforce:{item['record_id']}"
        plain = leadgate("audit", "explain", subject, "--config", str(env.config))
        assert plain.returncode == 0 and "namesake" not in plain.stdout, plain.stderr
        assert "[sealed" in plain.stdout
        shown = leadgate("audit", "explain", subject, "--show-personal", "--reason",
                         "case 7 review", "--officer", "cco-marta", "--token",
                         tokens["cco-marta"], "--config", str(env.config))
        assert shown.returncode == 0, shown.stderr
        assert "note='cleared: namesake, DOB differs'" in shown.stdout \
            or "note=cleared: namesake, DOB differs" in shown.stdout, shown.stdout
    finally:
        env.sb.stop()


def test_review_list_filters_and_shows_what_an_officer_picks_a_team_by(
        tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=200)
    try:
        cfg = ("--config", str(env.config))
        assert sync_run(env, "salesforce").returncode == 0
        everything = json.loads(leadgate("review", "list", "--json", *cfg).stdout)
        override = next(i for i in everything if i["reason"] == "unlicensed_jurisdiction")
        # the lead's routing facts, from its decision, and no personal data
        assert set(override["lead"]) == {"jurisdiction", "customer_type", "product"}
        only = json.loads(leadgate("review", "list", "--json", "--reason",
                                   "unlicensed_jurisdiction", "--source", "salesforce",
                                   *cfg).stdout)
        assert only and {i["reason"] for i in only} == {"unlicensed_jurisdiction"}
        assert len(only) == sum(i["reason"] == "unlicensed_jurisdiction" for i in everything)
        none = leadgate("review", "list", "--source", "hubspot", *cfg)
        assert none.returncode == 0 and none.stdout.strip() == "no review items match"

        first = leadgate("review", "approve", str(override["id"]), "--team", "uk_retail",
                         "--rep", "alice", "--officer", "cco-marta", "--token",
                         _token(env, "cco-marta"), *cfg)
        assert "second officer" in first.stdout, first.stderr
        text = leadgate("review", "list", "--reason", "unlicensed_jurisdiction", *cfg).stdout
        lines = text.splitlines()
        assert lines[0].split()[:3] == ["id", "age", "lead"]
        assert lines[-1] == f"{len(only)} item(s)"
        [row] = [line for line in lines if override["record_id"] in line]
        facts = override["lead"]
        assert f"{facts['jurisdiction']} / {facts['customer_type']} / {facts['product']}" in row
        assert "awaiting_second_officer" in row
        assert row.endswith("(first: cco-marta for uk_retail/alice)")
    finally:
        env.sb.stop()


def _signed_size(engine: sa.Engine) -> int:
    """How many entries the latest signed checkpoint covers."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(audit_schema.checkpoints.c.size)))
                   .scalar_one())


def _unsigned(env: Any) -> list[str]:
    """The kinds of the entries no signed checkpoint covers, but for the latest checkpoint's
    own `checkpoint` entry (entry N+1 of a checkpoint of size N)."""
    engine = env.engine()
    try:
        entries = ledger_entries(engine)
        return [e["kind"] for e in entries[_signed_size(engine) + 1:]]
    finally:
        engine.dispose()


def _cut_from(engine: sa.Engine, seq: int) -> None:
    """Delete entries seq.. as the reviewer did (triggers dropped) and recompute the head row
    to match the entries left, so that only a signed checkpoint can tell."""
    from audit.merkle import Accumulator
    from tests.audit.test_audit_tamper import below_triggers

    with below_triggers(engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq >= :s"), {"s": seq})
        kept = [bytes(h) for h in conn.execute(sa.text(
            "SELECT entry_hash FROM ledger_entries ORDER BY seq")).scalars()]
        acc = Accumulator()
        for leaf in kept:
            acc.add(leaf)
        conn.execute(audit_schema.head.update().values(
            size=len(kept), last_hash=kept[-1], frontier=acc.frontier()))
        conn.commit()


def test_officer_actions_are_signed_at_once_so_cutting_one_off_fails_verification(
        tmp_path: Path) -> None:
    """An officer's action, a refused login and a credential are each covered by a checkpoint
    the command itself signs, not left to the next sync run with only the head row (which
    anyone who can write the database can recompute) to protect them. Cutting a rejection
    and a refused login off the tail, head recomputed, then fails `audit verify`, with or
    without the checkpoint kept from an earlier export."""
    env = start_env(tmp_path, leads=40)
    try:
        cfg = ("--config", str(env.config))
        assert sync_run(env, "salesforce").returncode == 0
        item = json.loads(leadgate("review", "list", "--json", *cfg).stdout)[0]
        kept = tmp_path / "export"
        assert leadgate("audit", "export", "--out", str(kept), *cfg).returncode == 0
        token = _token(env, "cco-marta")
        assert _unsigned(env) == []  # the credential
        reject = ("review", "reject", str(item["id"]), "--officer", "cco-marta", "--note",
                  "confirmed", *cfg)
        rej = leadgate(*reject, "--token", token)
        assert rej.returncode == 0, rej.stderr
        assert _unsigned(env) == []  # the action and its CRM write-back outcome
        bad = leadgate("review", "approve", str(item["id"]), "--team", "uk_retail", "--rep",
                       "alice", "--officer", "cco-marta", "--token", "wrong", *cfg)
        assert bad.returncode == 2 and "could not be authenticated" in bad.stderr
        assert _unsigned(env) == []  # the refused login
        engine = env.engine()
        try:
            [action] = [e for e in ledger_entries(engine) if e["kind"] == "review_action"]
            assert action["payload"]["action"] == "reject"
            assert _signed_size(engine) > action["chain"]["seq"]
        finally:
            engine.dispose()
        assert leadgate("audit", "verify", *cfg).returncode == 0

        engine = env.engine()
        try:
            _cut_from(engine, action["chain"]["seq"])
        finally:
            engine.dispose()
        prior = ("--prior-checkpoint", str(kept / "checkpoint.json"))
        for extra in ((), prior):
            verify = leadgate("audit", "verify", *cfg, *extra)
            assert verify.returncode == 1, (extra, verify.stdout, verify.stderr)
            assert f"entry {action['chain']['seq']}" in verify.stderr
            assert "truncated" in verify.stderr, verify.stderr
    finally:
        env.sb.stop()


def test_an_officer_action_without_the_signing_key_is_refused_before_it_is_recorded(
        tmp_path: Path) -> None:
    """An action is signed as soon as it is recorded, so, as for a sync run, a missing key
    stops it first (exit 2, naming the file), with nothing recorded."""
    env = start_env(tmp_path, leads=40)
    try:
        cfg = ("--config", str(env.config))
        assert sync_run(env, "salesforce").returncode == 0
        item = json.loads(leadgate("review", "list", "--json", *cfg).stdout)[0]
        token = _token(env, "cco-marta")
        key = tmp_path / "leadgate-signing.key"
        key.rename(tmp_path / "elsewhere.key")
        rej = leadgate("review", "reject", str(item["id"]), "--officer", "cco-marta",
                       "--token", token, *cfg)
        assert rej.returncode == 2
        assert f"error: {key}: signing key file not found" in rej.stderr, rej.stderr
        engine = env.engine()
        try:
            assert "review_action" not in [e["kind"] for e in ledger_entries(engine)]
        finally:
            engine.dispose()
        (tmp_path / "elsewhere.key").rename(key)
        assert leadgate("review", "reject", str(item["id"]), "--officer", "cco-marta",
                        "--token", token, *cfg).returncode == 0
        assert _unsigned(env) == []
    finally:
        env.sb.stop()
