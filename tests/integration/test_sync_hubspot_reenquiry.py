"""A returning client who enquires again through a HubSpot form is routed again.

HubSpot merges a form submission into the contact with the same email: the contact keeps its
owner, its lifecycle stage (stages only move forward) and leadgate's stamp, and only its
recent_conversion_date moves. So "unstamped at the intake stage" never sees it again; the pull
also takes stamped contacts with a submission after leadgate last read them (leadgate_read_at,
HubSpot's own clock), each as a new intake episode. Real sync runs against the sandbox portal
over HTTP."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from sync.state import sync_decisions
from tests.integration.synctools import HS, check_invariants, start_env, summary, sync_run


def test_a_client_enquiring_again_is_decided_again_in_a_new_episode(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=0, contacts=120)
    try:
        first = summary(sync_run(env, "hubspot"))
        assert first["status"] == "done" and first["decided"] == len(env.intake["hubspot"])
        t = env.sb.store.contacts
        owner, status, decision = HS
        i = next(i for i in sorted(env.intake["hubspot"])
                 if t.get(i, status) == "assigned" and t.get(i, "email"))
        before = t.get(i, decision)
        with env.sb.store.lock:  # the rep has won the client meanwhile
            t.set(i, {"lifecyclestage": "customer",
                      "lastmodifieddate": env.sb.store.stamp(seconds=False)})
        assert t.get(i, "leadgate_read_at")  # leadgate dated what it decided on

        # a run with no new enquiry decides nothing: leadgate's own writes are not enquiries
        assert summary(sync_run(env, "hubspot"))["decided"] == 0

        rid, created = env.sb.enquire(email=t.get(i, "email"), product_interest="Easy Saver")
        assert not created and rid == t.id_of(i)
        assert t.get(i, status) == "assigned" and t.get(i, "lifecyclestage") == "customer"
        again = summary(sync_run(env, "hubspot"))
        assert again["status"] == "done" and again["decided"] == 1, again
        assert t.get(i, decision) != before  # stamped with the new decision
        engine = env.engine()
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sync_decisions.c.episode, sync_decisions.c.decision_id)
                                .where(sync_decisions.c.record_id == rid)
                                .order_by(sync_decisions.c.id)).all()
        engine.dispose()
        # the new episode is the decision the contact carried when it enquired again
        assert [(r.episode, r.decision_id) for r in rows] == [("", before),
                                                              (before, t.get(i, decision))]
        assert summary(sync_run(env, "hubspot"))["decided"] == 0  # answered once, not looped
        check_invariants(env, "hubspot")
        assert t.get(i, owner)
    finally:
        env.sb.stop()
