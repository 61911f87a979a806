"""Personal data encryption, erasure (crypto-shredding), retention, and `audit explain`."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit.erasure import erase_subject, retention_report
from audit.errors import LedgerError
from audit.explain import explain_subject, record_personal_access, render_html, render_text
from audit.ledger import EntryIn, Ledger
from audit.verify import verify_database

SUBJECT = "salesforce:00Q5g00000ABCDE"
EXAMPLE_POLICY = Path(__file__).parents[2] / "examples" / "policy"
DECISION: dict[str, Any] = {
    "decision_id": "01JD8Z6Q3W4XKQ0S0M5VJ3B1AA", "decided_at": "2026-11-24T10:15:02Z",
    "lead": {"source": "salesforce", "id": "00Q5g00000ABCDE", "jurisdiction": "GB",
             "customer_type": "retail", "product": "easy_saver"},
    "policy": {"id": "northwind-routing", "version": "2026.11.2", "digest": "sha256:" + "ab" * 32},
    "outcome": "assigned", "reason": None,
    "screening": [{"check": "sanctions", "list": "ofac_sdn", "list_digest": "sha256:" + "cd" * 32,
                   "hit": False, "best_score": 0.41}],
    "gates": [{"id": "complex-needs-appropriateness", "applied": False}],
    "rule": {"id": "uk-retail", "conditions": [
        {"path": "jurisdiction", "op": "within", "expected": ["GB"], "actual": "GB",
         "result": True}]},
    "rules_tried": [{"id": "difc-professional", "result": False}],
    "teams_considered": [
        {"team": "uk_retail", "eligible": True, "license": "FCA-FRN-123456-retail",
         "why": "FCA licence covers GB / easy_saver / retail, valid until 2027-06-30"},
        {"team": "uk_direct", "eligible": False, "license": None,
         "why": "licence FCA-FRN-123456-direct expired 2026-10-31"}],
    "team": {"id": "uk_retail", "why": "first eligible team of rule uk-retail"},
    "rep": {"id": "alice", "crm_id": "005000000000001AAA",
            "why": "round robin: next after bob; carol skipped (unavailable)"},
    "outreach": {"allowed_channels": ["email", "phone"], "contact_window": None,
                 "disclosures": [], "applied": ["uk-pension-cold-call-ban"]},
    "cooling_off": None,
}
PERSONAL = {"name": "Ada Lovelace-Byron", "email": "ada.lovelace@example.org",
            "phone": "+44 20 7946 0958"}


def _seed(engine: Engine, tmp_path: Path) -> Ledger:
    ledger = Ledger(engine, key_path=tmp_path / "signing.key")
    ledger.append_batch([
        EntryIn("decision", "hubspot:901", copy.deepcopy(DECISION), {"name": "Other Person"}),
        EntryIn("decision", SUBJECT, copy.deepcopy(DECISION), PERSONAL),
    ])
    ledger.checkpoint()
    ledger.append_batch([
        EntryIn("writeback", SUBJECT, {"decision_id": DECISION["decision_id"], "status": "ok",
                                       "owner": "005000000000001AAA", "crm": "salesforce"}),
        EntryIn("review_action", SUBJECT, {"action": "confirmed", "by": "cco-jane"}),
    ])
    return ledger


def _officer(engine: Engine, tmp_path: Path, leadgate: Any) -> tuple[str, str]:
    """A leadgate.yaml over this ledger (the example policy names the officers) and a token for
    cco-marta: (config path, token)."""
    config = tmp_path / "leadgate.yaml"
    config.write_text(
        f"database_url: {engine.url.render_as_string(hide_password=False)}\n"
        f"policy: {EXAMPLE_POLICY}\nsigning_key: signing.key\n"
        "sources:\n  hubspot:\n    kind: hubspot\n    connection:\n"
        "      token: {env: LG_TEST_UNUSED}\n")
    proc = leadgate("review", "add-officer", "cco-marta", "--config", str(config),
                    cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    return str(config), proc.stdout.strip().splitlines()[-1]


def _database_bytes(engine: Engine) -> bytes:
    path = Path(str(engine.url.database))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_personal_data_is_encrypted_and_hashes_cover_ciphertext(engine: Engine,
                                                                 tmp_path: Path) -> None:
    _seed(engine, tmp_path)
    with engine.connect() as conn:
        bodies = b"".join(bytes(r[0]) for r in conn.execute(sa.text(
            "SELECT body FROM ledger_entries")))
    assert b"ada.lovelace" not in bodies and b'"ct":' in bodies
    if engine.dialect.name == "sqlite":
        assert b"ada.lovelace" not in _database_bytes(engine)
    assert explain_subject(engine, SUBJECT).entries[0].personal == "sealed"  # not decrypted
    explained = explain_subject(engine, SUBJECT, reveal_personal=True)
    assert explained.entries[0].personal == PERSONAL


def test_erasure_shreds_the_key_and_the_chain_still_verifies(engine: Engine,
                                                             tmp_path: Path) -> None:
    ledger = _seed(engine, tmp_path)
    with engine.connect() as conn:
        key = bytes(conn.execute(sa.text("SELECT key FROM ledger_subject_keys WHERE subject = :s"),
                                 {"s": SUBJECT}).scalar_one())
        before = [bytes(r[0]) for r in conn.execute(sa.text(
            "SELECT body FROM ledger_entries ORDER BY seq"))]
    appended = erase_subject(ledger, SUBJECT, "GDPR art. 17 request #4711", by="cco-jane")
    assert appended.kind == "erasure"
    report = verify_database(engine)
    assert report.kinds["erasure"] == 1
    with engine.connect() as conn:
        after = [bytes(r[0]) for r in conn.execute(sa.text(
            "SELECT body FROM ledger_entries ORDER BY seq"))]
        assert conn.execute(sa.text("SELECT key FROM ledger_subject_keys WHERE subject = :s"),
                            {"s": SUBJECT}).scalar_one() is None
    assert after[:len(before)] == before  # nothing rewritten: the ciphertext stays, unreadable
    if engine.dialect.name == "sqlite":
        assert key not in _database_bytes(engine)  # overwritten, not merely unlinked
    explained = explain_subject(engine, SUBJECT)
    assert explained.chain_ok and explained.erased_at
    assert [e.personal for e in explained.entries][:1] == ["erased"]
    text = render_text(explained)
    assert "[erased" in text and "Ada" not in text
    assert "uk-retail" in text and "FCA-FRN-123456-retail" in text  # the facts remain
    # Other subjects are untouched; new personal data for the erased subject is never stored.
    assert explain_subject(engine, "hubspot:901", reveal_personal=True).entries[0].personal \
        == {"name": "Other Person"}
    assert explain_subject(engine, SUBJECT, reveal_personal=True).entries[0].personal == "erased"
    ledger.append_batch([EntryIn("writeback", SUBJECT, {"status": "ok"}, {"email": "x@y.z"})])
    assert explain_subject(engine, SUBJECT).entries[-1].personal == "withheld"
    with pytest.raises(LedgerError, match="already erased"):
        erase_subject(ledger, SUBJECT, "GDPR art. 17 request #4712")


def test_explain_shows_every_entry_with_sequence_hash_and_proof(sqlite_engine: Engine,
                                                                tmp_path: Path, leadgate) -> None:  # type: ignore[no-untyped-def]
    _seed(sqlite_engine, tmp_path)
    explained = explain_subject(sqlite_engine, SUBJECT)
    assert [e.kind for e in explained.entries] == ["decision", "writeback", "review_action"]
    assert explained.chain_ok
    assert "included in signed checkpoint 1" in str(explained.entries[0].included_in)
    assert "not yet signed" in str(explained.entries[1].included_in)
    page = render_html(explained)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "round robin: next after bob" in page and explained.entries[0].entry_hash in page
    url = sqlite_engine.url.render_as_string(hide_password=False)
    out = tmp_path / "explain.html"
    proc = leadgate("audit", "explain", SUBJECT, "--html", str(out), "--database-url", url,
                    cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "#2 decision" in proc.stdout and "rep chosen alice" in proc.stdout
    assert "policy northwind-routing version 2026.11.2" in proc.stdout
    assert out.read_text().count("<h2>") == 3
    proc = leadgate("audit", "explain", "salesforce:nope", "--database-url", url,
                    cwd=str(tmp_path))
    assert proc.returncode == 2 and "no ledger entries" in proc.stderr


def test_explain_shows_personal_data_only_when_asked_and_records_that(
        engine: Engine, tmp_path: Path, leadgate) -> None:  # type: ignore[no-untyped-def]
    _seed(engine, tmp_path)
    url = engine.url.render_as_string(hide_password=False)
    base = ("audit", "explain", SUBJECT, "--database-url", url)
    page = tmp_path / "extract.html"
    proc = leadgate(*base, "--html", str(page), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout + page.read_text()
    assert "rep chosen alice" in proc.stdout and "[sealed" in proc.stdout
    assert not any(value in shown for value in PERSONAL.values())
    assert verify_database(engine).kinds.get("personal_data_access") is None

    proc = leadgate(*base, "--show-personal", cwd=str(tmp_path))
    assert proc.returncode == 2 and "--show-personal needs --reason" in proc.stderr
    assert PERSONAL["email"] not in proc.stdout
    # Only an authenticated officer of the policy sees personal data, and is recorded.
    show = (*base, "--show-personal", "--reason", "subject access request #88")
    proc = leadgate(*show, cwd=str(tmp_path))
    assert proc.returncode == 2 and "--show-personal needs --officer" in proc.stderr
    config, token = _officer(engine, tmp_path, leadgate)
    for officer, wrong in (("cco-marta", "not-the-token"), ("dpo-sam", token)):
        proc = leadgate(*show, "--config", config, "--officer", officer, "--token", wrong,
                        cwd=str(tmp_path))
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "could not be authenticated" in proc.stderr \
            or "'dpo-sam' is not an officer" in proc.stderr
        assert PERSONAL["email"] not in proc.stdout
    # both refused attempts are on record, with who claimed what, and no token
    with engine.connect() as conn:
        refused = [json.loads(bytes(b))["payload"] for b in conn.execute(sa.text(
            "SELECT body FROM ledger_entries WHERE kind = 'officer_auth_refused' ORDER BY seq"
        )).scalars()]
    assert [(r["officer"], r["action"]) for r in refused] == [
        ("cco-marta", "show_personal"), ("dpo-sam", "show_personal")]
    assert token not in json.dumps(refused) and "not-the-token" not in json.dumps(refused)
    proc = leadgate("audit", "explain", "salesforce:nope", "--show-personal", "--reason",
                    "subject access request #88",
                    "--database-url", url, "--config", config, "--officer", "cco-marta",
                    "--token", token, cwd=str(tmp_path))
    assert proc.returncode == 2 and "no ledger entries" in proc.stderr
    assert verify_database(engine).kinds.get("personal_data_access") is None
    proc = leadgate(*show, "--config", config, "--officer", "cco-marta", cwd=str(tmp_path),
                    env={"LEADGATE_OFFICER_TOKEN": token})
    assert proc.returncode == 0, proc.stderr
    assert PERSONAL["email"] in proc.stdout and PERSONAL["name"] in proc.stdout
    report = verify_database(engine)  # the showing is an entry of the chain, which verifies
    assert report.kinds["personal_data_access"] == 1
    with engine.connect() as conn:
        (last, _), (kind, body) = conn.execute(sa.text(
            "SELECT kind, body FROM ledger_entries ORDER BY seq DESC LIMIT 2")).all()
    assert last == "checkpoint"  # signed at once by the command that recorded the showing
    assert kind == "personal_data_access"
    assert b"subject access request #88" in bytes(body) and b'"by":"cco-marta"' in bytes(body)
    assert "personal_data_access" in proc.stdout  # appended before the extract was read


def test_erasure_from_the_command_line_needs_an_authenticated_officer(
        engine: Engine, tmp_path: Path, leadgate) -> None:  # type: ignore[no-untyped-def]
    _seed(engine, tmp_path)
    config, token = _officer(engine, tmp_path, leadgate)
    erase = ("audit", "erase", SUBJECT, "--reason", "GDPR art. 17 request #4711",
             "--config", config)
    for extra in (("--officer", "cco-marta", "--token", "not-the-token"),
                  ("--officer", "someone", "--token", token),
                  ("--officer", "cco-marta")):  # no token, no terminal to ask on
        proc = leadgate(*erase, *extra, cwd=str(tmp_path), input="",
                        env={"LEADGATE_OFFICER_TOKEN": ""})
        assert proc.returncode == 2 and proc.stderr.startswith("error: "), proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
    assert leadgate(*erase, cwd=str(tmp_path)).returncode == 2  # --officer is required
    assert verify_database(engine).kinds.get("erasure") is None
    assert PERSONAL["email"] in render_text(explain_subject(engine, SUBJECT,
                                                            reveal_personal=True))

    named = ("audit", "erase", SUBJECT, "--reason", f"request from {PERSONAL['email']}",
             "--config", config, "--officer", "cco-marta", "--token", token)
    proc = leadgate(*named, cwd=str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "is an email address" in proc.stderr and PERSONAL["email"] not in proc.stderr
    assert verify_database(engine).kinds.get("erasure") is None

    proc = leadgate(*erase, "--officer", "cco-marta", "--token", token, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"erased {SUBJECT}: key destroyed")
    with engine.connect() as conn:
        (last, _), (kind, body) = conn.execute(sa.text(
            "SELECT kind, body FROM ledger_entries ORDER BY seq DESC LIMIT 2")).all()
    assert last == "checkpoint"  # signed at once by the command that recorded the erasure
    assert kind == "erasure" and b'"by":"cco-marta"' in bytes(body)
    assert b'"os_user":' in bytes(body)
    assert PERSONAL["email"] not in render_text(explain_subject(engine, SUBJECT,
                                                                reveal_personal=True))
    assert verify_database(engine).kinds["erasure"] == 1


@pytest.mark.parametrize("reason, found", [
    ("request from ada.lovelace@example.org", "is an email address"),
    ("request from Ada Lovelace-Byron", "word 3 of the reason"),
    ("request from Ada", "word 3 of the reason"),
    ("request from Zoë Müller", "word 3 of the reason"),  # accents or none, every name
    ("request from Zoe Mueller", "word 3 of the reason"),
    ("request by Z. M.", "word 3 of the reason"),  # initials
    ("j.smith at example.org asked", "word 1 of the reason"),
    ("call on +44 20 7946 0958", "a run of 9 digits or more"),
    ("call on 030/98765432", "a run of 9 digits or more"),
    ("call on (555) 123-4567", "a run of 9 digits or more"),
    ("call back on 5550199", "word 2 of the reason"),
    ("DSR 2079460958", "a run of 9 digits or more"),
    ("ticket 612 345 678", "a run of 9 digits or more"),
    ("customer asked to be forgotten", "names no request"),  # a story, not a reference
])
def test_a_reason_that_could_name_the_person_is_refused_and_nothing_is_recorded(
        engine: Engine, tmp_path: Path, reason: str, found: str) -> None:
    # The reasons of an erasure and of a showing are kept in clear for good (an erasure's
    # must outlive the key it destroys): they must not put the person back in the ledger.
    ledger = _seed(engine, tmp_path)
    for act in (lambda: erase_subject(ledger, SUBJECT, reason, by="cco-jane"),
                lambda: record_personal_access(ledger, SUBJECT, reason, by="cco-jane")):
        with pytest.raises(LedgerError) as refused:
            act()
        assert found in refused.value.message
        assert "reference" in (refused.value.fix or "")
        shown = f"{refused.value.message} {refused.value.fix}".casefold()
        assert not any(w in shown for w in ("ada", "lovelace", "byron", "7946", "example.org",
                                            "müller", "mueller", "98765432"))
    kinds = verify_database(engine).kinds
    assert kinds.get("erasure") is None and kinds.get("personal_data_access") is None
    assert explain_subject(engine, SUBJECT, reveal_personal=True).entries[0].personal == PERSONAL


@pytest.mark.parametrize("reason", ["GDPR art. 17 request #4711",
                                    "GDPR Art. 17(1)(a) request DSR-2026-0412",
                                    "DSAR-2026-000123 received 05.11.2026 10:42",
                                    "Art. 17(1)(a) and Art. 21(2) GDPR, letter of 12 May 2026",
                                    "privacy request DSR-0412-3301-7788"])
def test_a_reference_is_a_good_reason(engine: Engine, tmp_path: Path, reason: str) -> None:
    ledger = _seed(engine, tmp_path)
    assert record_personal_access(ledger, SUBJECT, reason, by="cco-jane").kind \
        == "personal_data_access"
    assert erase_subject(ledger, SUBJECT, reason, by="cco-jane").kind == "erasure"


def test_a_reason_given_after_the_erasure_is_held_to_the_same_rule(engine: Engine,
                                                                   tmp_path: Path) -> None:
    # once the key is gone there is nothing to compare a name with: the rule needs none
    ledger = _seed(engine, tmp_path)
    erase_subject(ledger, SUBJECT, "GDPR art. 17 request DSR-2026-0412", by="cco-jane")
    with pytest.raises(LedgerError, match="word 1 of the reason"):
        record_personal_access(ledger, SUBJECT, "Ada Lovelace-Byron rang again", by="cco-jane")
    assert verify_database(engine).kinds.get("personal_data_access") is None


def test_explain_says_why_a_lead_was_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    # "REFUSED (reason: invalid_lead)" alone leaves the officer guessing which field was wrong
    refused = {**copy.deepcopy(DECISION), "outcome": "refused", "reason": "invalid_lead",
               "detail": "the record could not be normalised (2 problem(s))",
               "problems": ["investable_assets.amount: missing or not a number",
                            "'Gold Client' is not mapped for customer_type"],
               "notes": ["cooling-off not evaluated for a refusal"],
               "team": None, "rep": None, "queue": "compliance_review"}
    ledger = Ledger(sqlite_engine, key_path=tmp_path / "signing.key")
    ledger.append_batch([EntryIn("decision", SUBJECT, refused)])
    explained = explain_subject(sqlite_engine, SUBJECT)
    text, page = render_text(explained), render_html(explained)
    for line in ("REFUSED (reason: invalid_lead)",
                 "why: the record could not be normalised (2 problem(s))",
                 "problem: investable_assets.amount: missing or not a number",
                 "problem: 'Gold Client' is not mapped for customer_type",
                 "note: cooling-off not evaluated for a refusal"):
        assert line in text, text
    assert "problem: investable_assets.amount: missing or not a number" in page
    assert "problem: &#x27;Gold Client&#x27; is not mapped" in page


def test_retention_reports_and_deletes_nothing(sqlite_engine: Engine, tmp_path: Path) -> None:
    ledger = _seed(sqlite_engine, tmp_path)
    later = retention_report(ledger, 7, now=datetime(2040, 1, 1, tzinfo=UTC))
    assert later.past == later.total == 6 and "Nothing was deleted" in later.summary()
    assert retention_report(ledger, 7).past == 0
    assert verify_database(sqlite_engine).entries == 6
