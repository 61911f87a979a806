"""sync/violations.py: which watched records are cooling-off violations, judged against the
decision's own cooling-off (not the CRM's copy of not_before), and recording them once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from audit import db
from audit.ledger import Ledger
from connectors.base import Watched
from routing_core.decision import iso
from sync import violations
from sync.state import dumps, sync_decisions, sync_review_queue

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=5)


def _decision(record_id: str, decision_id: str, *, outcome: str = "assigned",
              not_before: datetime | None = LATER, blocks: str | None = "proposal",
              source: str = "salesforce") -> dict[str, object]:
    cooling = None if not_before is None and blocks is None else {
        "id": "eu-mortgage-reflection", "hours": 168, "from": "first_contact",
        "blocks_stage": blocks, "not_before": iso(not_before) if not_before else None}
    return {"source": source, "record_id": record_id, "episode": "", "cause": "intake",
            "decision_id": decision_id, "run_id": "r0", "decided_at": NOW, "outcome": outcome,
            "reason": None if outcome == "assigned" else "cooling_off_violation",
            "team_id": None, "rep_id": None, "rotation_slot": None,
            "decision": dumps({"decision_id": decision_id, "cooling_off": cooling}),
            "writeback": "{}", "writeback_status": "ok", "writeback_attempts": 1}


def test_find_judges_each_record_by_its_decisions_cooling_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'lg.db'}")
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(sync_decisions), [
            _decision("A", "D-A"),                                  # a violation
            _decision("B", "D-B", not_before=NOW - timedelta(hours=1)),  # window over
            _decision("C", "D-C", outcome="refused"),               # with compliance already
            _decision("D", "D-D", blocks="closed_won"),             # blocks another stage
            _decision("E", "D-E-old"),                              # re-routed since
            _decision("F", "D-F", source="hubspot"),                # another source
            _decision("G", "D-G", not_before=None, blocks=None),    # no cooling-off at all
        ])
        # Officers' approvals (sync/review.py): the window of the overridden refusal is kept.
        approvals = [_decision("H", "D-H"), _decision("I", "D-I")]
        for row, refusal in zip(approvals, ("no_licensed_team", "cooling_off_violation"),
                                strict=True):
            payload = json.loads(str(row["decision"]))
            row.update(cause="review", episode=f"review:{row['record_id']}", decision=dumps({
                "action": "approve", "action_id": row["decision_id"],
                "refusal_reason": refusal, "cooling_off": payload["cooling_off"]}))
        conn.execute(sa.insert(sync_decisions), approvals)
    # H's CRM shows the stage as "Proposal": the same stage as the policy's `proposal`
    watched = [Watched(r, "Proposal" if r == "H" else "proposal", d, LATER) for r, d in (
        ("A", "D-A"), ("B", "D-B"), ("C", "D-C"), ("D", "D-D"), ("E", "D-E-new"),
        ("F", "D-F"), ("G", "D-G"), ("H", "D-H"), ("I", "D-I"))] + [
        Watched("A2", "proposal", None, LATER)]
    with engine.connect() as conn:
        found = violations.find(conn, "salesforce", watched, NOW)
    # H: approved over a licence refusal, then moved into the blocked stage. I: approved while
    # it already sat there (refused cooling_off_violation): the officer knew, not reported again.
    assert [(v.record_id, v.decision_id, v.rule_id, v.blocks_stage, v.observed_stage)
            for v in found] == [("A", "D-A", "eu-mortgage-reflection", "proposal", "proposal"),
                                ("H", "D-H", "eu-mortgage-reflection", "proposal", "Proposal")]
    assert found[0].not_before == iso(LATER) and found[1].episode == "review:H"

    # The decision's not_before counts, not the CRM's copy: past it, nothing is reported.
    with engine.connect() as conn:
        assert violations.find(conn, "salesforce", watched, LATER) == []

    ledger = Ledger(engine)
    assert [v.record_id for v in violations.record(engine, ledger, "salesforce", "run-1",
                                                   found, NOW)] == ["A", "H"]
    # Recorded once: a second report of the same decision records nothing, and find skips it.
    assert violations.record(engine, ledger, "salesforce", "run-2", found, NOW) == []
    with engine.connect() as conn:
        assert violations.find(conn, "salesforce", watched, NOW) == []
        items = conn.execute(sa.select(sync_review_queue)).all()
    assert [(i.record_id, i.decision_id, i.reason, i.status, i.transient) for i in items] == [
        ("A", "D-A", "cooling_off_violation", "open", False),
        ("H", "D-H", "cooling_off_violation", "open", False)]
    ledger.verify()
    engine.dispose()


def test_blocked_stages_come_from_the_policy() -> None:
    class Rule:
        def __init__(self, stage: str | None) -> None:
            self.blocks_stage = stage

    class Policy:
        cooling_off = (Rule("proposal"), Rule(None), Rule("closed_won"), Rule("proposal"))

    assert violations.blocked_stages(Policy()) == ["closed_won", "proposal"]
    assert violations.blocked_stages(object()) == []


def test_the_summary_and_the_digest_show_violations() -> None:
    from sync import notify
    from sync.summary import RunSummary

    s = RunSummary(source="salesforce", run_id="01RUN", violations=2)
    assert "cooling-off violations reported to the review queue: 2" in s.render()
    assert s.to_json()["violations"] == 2 and "would_flag" not in s.to_json()
    flagged = [{"record_id": "00Q1", "decision_id": "D1", "rule": "eu-mortgage-reflection",
                "stage": "proposal", "not_before": "2026-12-09T05:50:57Z"}]
    dry = RunSummary(source="salesforce", run_id="01RUN", dry_run=True, would_flag=flagged)
    assert "would report 1 cooling-off violations" in dry.render()
    assert dry.to_json()["would_flag"] == flagged
    body = notify.digest("salesforce", "01RUN", [], [], refused_by_reason={}, write_failures=0,
                         violations=flagged, violations_total=1)
    assert body["cooling_off_violations_total"] == 1
    assert body["cooling_off_violations"] == flagged
    text = notify._text(body)
    assert "1 cooling-off violations" in text and "00Q1 at proposal" in text


def test_a_new_intake_episode_ends_open_refusals_but_not_a_reported_violation(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from routing_core.policy import load_policy
    from routing_core.screening import NullScreener
    from sync.writeahead import Candidate, Decider, write_ahead

    engine = db.make_engine(f"sqlite:///{tmp_path / 'lg.db'}")
    db.upgrade(engine)
    item = {"source": "salesforce", "episode": "", "transient": False, "status": "open",
            "lead_input": None, "created_at": NOW, "last_evaluated_at": NOW, "evaluations": 1}
    with engine.begin() as conn:
        conn.execute(sa.insert(sync_decisions), [_decision("A", "D-A"),
                                                 _decision("B", "D-B", outcome="refused")])
        conn.execute(sa.insert(sync_review_queue), [
            {**item, "record_id": "A", "decision_id": "D-A", "reason": "cooling_off_violation"},
            {**item, "record_id": "B", "decision_id": "D-B", "reason": "cooling_off_violation"},
        ])
    policy = load_policy(Path(__file__).parents[1] / "routing_core" / "policies" / "basic.yaml")
    decider = Decider(source="salesforce", crm="salesforce", policy=policy,
                      screener=NullScreener(), clock=lambda: NOW)
    lead = {"jurisdiction": "GB", "customer_type": "retail", "product": "easy_saver"}
    write_ahead(engine, Ledger(engine, key_path=tmp_path / "key"), decider,
                [Candidate(r, "again", "intake", dict(lead)) for r in ("A", "B")], run_id="r1")
    with engine.connect() as conn:
        status = dict(conn.execute(sa.select(sync_review_queue.c.decision_id,
                                             sync_review_queue.c.status)).all())
    engine.dispose()
    assert status["D-A"] == "open"  # the violation report stays with compliance
    assert status["D-B"] == "superseded"  # the refusal ended with its episode
