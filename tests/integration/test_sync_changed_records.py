"""A record edited in the CRM between leadgate's read and its write-back (a person correcting
a name or a country, an enrichment tool filling a company in) may no longer be the lead that
was decided: a sanctioned name given to an assigned lead must not be written to a rep. The
write is not made (`changed`, in the ledger); the record is read again and decided anew, in
its own episode, whether or not the pull comes back to it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.state import changed_episode, sync_decisions, sync_review_queue
from tests.integration.synctools import (
    check_invariants,
    crm_state,
    ledger_entries,
    start_env,
    summary,
    sync_run,
)

SANCTIONED = {"salesforce": {"FirstName": "Taras Ilvenovich", "LastName": "Karvossen"},
              "hubspot": {"firstname": "Taras Ilvenovich", "lastname": "Karvossen"}}


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
@pytest.mark.parametrize("pulled_again", [True, False], ids=["pulled-again", "not-pulled"])
def test_a_record_edited_before_its_write_back_is_decided_again(
        tmp_path: Path, any_url: str, crm: str, pulled_again: bool) -> None:
    env = start_env(tmp_path, leads=60, db_url=any_url)
    try:
        killed = sync_run(env, crm, crash_at="committed:1")  # decided, nothing written yet
        assert killed.returncode == -9, killed.stderr[-2000:]
        engine = env.engine()
        d = sync_decisions.c
        with engine.connect() as conn:
            assigned = sorted(r for r, in conn.execute(sa.select(d.record_id).where(
                d.source == crm, d.outcome == "assigned", d.writeback_status == "pending")))
        store = env.sb.store
        table = store.leads if crm == "salesforce" else store.contacts
        record = assigned[0]
        i = table.index_of(record)
        if not pulled_again:  # new intake leads that the pull reaches before the edited one
            for n in range(2):
                if crm == "salesforce":
                    store.new_lead({"LastName": f"New {n}", "Country": "GB"})
                else:
                    store.new_contact({"lastname": f"New {n}", "country": "GB"})
            time.sleep(1.1)  # Salesforce stamps whole seconds: the edit comes after them
        store.person_edits(crm, i, SANCTIONED[crm])

        # --limit 1: the pull reads one new lead and stops; the edited record, changed last,
        # is not pulled again in this run, and is decided again all the same
        done = sync_run(env, crm, *(() if pulled_again else ("--limit", "1")))
        s = summary(done)
        assert done.returncode == 0, s
        assert s["changed"] == 1 and s["write_errors"] == 0, s
        with engine.connect() as conn:
            rows = conn.execute(sa.select(d.episode, d.decision_id, d.outcome, d.reason,
                                          d.writeback_status).where(
                d.source == crm, d.record_id == record).order_by(d.id)).all()
        first, second = rows
        assert (first.episode, first.outcome, first.writeback_status) == ("", "assigned",
                                                                          "changed")
        assert second.episode == changed_episode(first.decision_id)
        assert (second.outcome, second.reason, second.writeback_status) == (
            "refused", "sanctions_hit", "ok")
        owner, status, stamp = crm_state(env.sb, crm, i)
        assert (status, stamp) == ("refused", second.decision_id)
        [changed] = [e["payload"] for e in ledger_entries(engine) if e["kind"] == "writeback"
                     and e["payload"]["decision_id"] == first.decision_id
                     and e["payload"]["status"] == "changed"]
        assert "changed in the CRM after leadgate read it" in changed["message"]

        assert summary(sync_run(env, crm))["changed"] == 0  # the new leads, if any
        again = summary(sync_run(env, crm))  # nothing left: not decided a third time
        assert (again["decided"], again["changed"], again["retried"]) == (0, 0, 0), again
        check_invariants(env, crm)
        engine.dispose()
    finally:
        env.sb.stop()


def _refused_unscreened(engine: sa.Engine, crm: str) -> list[str]:
    """The records of `crm` refused because screening could not run, in id order."""
    d = sync_decisions.c
    with engine.connect() as conn:
        return list(conn.execute(sa.select(d.record_id).where(
            d.source == crm, d.reason == "screening_unavailable").order_by(d.record_id)
        ).scalars())


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_an_edited_transient_refusal_is_decided_from_the_crm_not_from_its_old_copy(
        tmp_path: Path, crm: str) -> None:
    """Refused because the lists could not be read (a transient refusal, kept to be
    re-evaluated from the copy read then), and renamed to a sanctioned name before the refusal
    was written: the refusal is not written, its review item is superseded, and the record is
    decided from what the CRM holds now, not re-evaluated from the old copy and assigned."""
    env = start_env(tmp_path, leads=40)
    try:
        lists = tmp_path / "policy" / "lists"
        shutil.move(lists / "peps.csv", tmp_path / "peps.csv")  # screening "down"
        killed = sync_run(env, crm, crash_at="committed:1")
        assert killed.returncode == -9, killed.stderr[-2000:]
        engine = env.engine()
        d = sync_decisions.c
        [record, *_] = _refused_unscreened(engine, crm)
        store = env.sb.store
        i = (store.leads if crm == "salesforce" else store.contacts).index_of(record)
        store.person_edits(crm, i, SANCTIONED[crm])
        shutil.move(tmp_path / "peps.csv", lists / "peps.csv")  # lists back

        s = summary(sync_run(env, crm))
        assert s["changed"] == 1, s
        with engine.connect() as conn:
            rows = conn.execute(sa.select(d.episode, d.cause, d.outcome, d.reason,
                                          d.writeback_status).where(
                d.source == crm, d.record_id == record).order_by(d.id)).all()
            item = conn.execute(sa.select(sync_review_queue.c.status).where(
                sync_review_queue.c.record_id == record).order_by(
                sync_review_queue.c.id)).scalars().all()
        engine.dispose()
        assert [(r.cause, r.outcome, r.reason, r.writeback_status) for r in rows] == [
            ("intake", "refused", "screening_unavailable", "changed"),
            ("intake", "refused", "sanctions_hit", "ok")], rows
        assert item == ["superseded", "open"]
        assert crm_state(env.sb, crm, i)[1] == "refused"
        check_invariants(env, crm)
    finally:
        env.sb.stop()


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_transient_refusal_edited_while_it_waits_is_re_evaluated_as_it_is_now(
        tmp_path: Path, crm: str) -> None:
    """Refused while the lists could not be read, then renamed in the CRM to a sanctioned name
    while it waited in the review queue: once the lists load, the re-evaluation screens the
    name the CRM holds, and refuses it, instead of assigning the copy read before."""
    env = start_env(tmp_path, leads=40)
    try:
        lists = tmp_path / "policy" / "lists"
        shutil.move(lists / "peps.csv", tmp_path / "peps.csv")  # screening "down"
        assert sync_run(env, crm).returncode == 0
        engine = env.engine()
        d = sync_decisions.c
        waiting = _refused_unscreened(engine, crm)
        assert len(waiting) >= 2
        renamed, other = waiting[:2]
        store = env.sb.store
        i = (store.leads if crm == "salesforce" else store.contacts).index_of(renamed)
        store.person_edits(crm, i, SANCTIONED[crm])
        shutil.move(tmp_path / "peps.csv", lists / "peps.csv")  # lists back

        s = summary(sync_run(env, crm))
        assert s["reevaluated"] >= 2, s
        with engine.connect() as conn:
            latest = {r.record_id: (r.cause, r.outcome, r.reason) for r in conn.execute(
                sa.select(d.record_id, d.cause, d.outcome, d.reason).where(
                    d.source == crm, d.record_id.in_([renamed, other])).order_by(d.id))}
        engine.dispose()
        assert latest[renamed] == ("reevaluation", "refused", "sanctions_hit"), latest
        # the lead not edited is re-evaluated on the same data as before, screened this time
        assert latest[other][0] == "reevaluation" and latest[other][2] not in (
            "screening_unavailable", "sanctions_hit"), latest
        assert crm_state(env.sb, crm, i)[1] == "refused"
        check_invariants(env, crm)
    finally:
        env.sb.stop()
