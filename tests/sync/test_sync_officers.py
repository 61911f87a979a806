"""Officer credentials through the real CLI: issuing, replacing and revoking a token is recorded
in the ledger (never the token or its hash), and a damaged key file stops every officer action
with one line instead of being overwritten or read as 'no officers'."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from audit.ledger import EntryIn, Ledger
from sync.review import credential_of
from tests.integration.synctools import (
    issue_token,
    leadgate,
    ledger_entries,
    start_env,
    sync_run,
)


def _credentials(env: Any) -> list[dict[str, Any]]:
    engine = env.engine()
    try:
        return [e for e in ledger_entries(engine) if e["kind"] == "officer_credential"]
    finally:
        engine.dispose()


def _add(env: Any, officer: str, by: str, token: str) -> str:
    proc = leadgate("review", "add-officer", officer, "--by", by, "--token", token,
                    "--config", str(env.config))
    assert proc.returncode == 0, proc.stderr
    return str(proc.stdout.strip().splitlines()[-1])


def _reject(env: Any, item: int, officer: str, token: str) -> Any:
    return leadgate("review", "reject", str(item), "--officer", officer, "--token", token,
                    "--note", "confirmed", "--config", str(env.config))


def test_issue_replace_and_revoke_are_recorded_and_take_effect(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=60)
    try:
        cfg = ("--config", str(env.config))
        # before any sync run: the ledger is created for the first credential's record
        first = leadgate("review", "add-officer", "cco-marta", *cfg)
        assert first.returncode == 0, first.stderr
        old = first.stdout.strip().splitlines()[-1]
        second = leadgate("review", "add-officer", "cco-marta", "--by", "cco-marta",
                          "--token", old, *cfg)  # rotation: authenticated with the old token
        assert second.returncode == 0, second.stderr
        new = second.stdout.strip().splitlines()[-1]
        assert new != old

        assert sync_run(env, "salesforce").returncode == 0
        items = json.loads(leadgate("review", "list", "--json", *cfg).stdout)
        assert len(items) >= 2
        refused = _reject(env, items[0]["id"], "cco-marta", old)
        assert refused.returncode == 2 and "could not be authenticated" in refused.stderr
        engine = env.engine()
        [attempt] = [e["payload"] for e in ledger_entries(engine)
                     if e["kind"] == "officer_auth_refused"]
        engine.dispose()
        assert (attempt["officer"], attempt["action"]) == ("cco-marta", "reject")
        assert "could not be authenticated" in attempt["why"] and old not in json.dumps(attempt)
        assert _reject(env, items[0]["id"], "cco-marta", new).returncode == 0

        # the last credential is not revoked: another officer holds one first
        kwame = leadgate("review", "add-officer", "mlro-kwame", "--by", "cco-marta",
                         "--token", new, *cfg).stdout.strip().splitlines()[-1]
        revoked = leadgate("review", "revoke-officer", "cco-marta", "--by", "cco-marta",
                           "--token", new, *cfg)
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked" in revoked.stdout
        refused = _reject(env, items[1]["id"], "cco-marta", new)
        assert refused.returncode == 2 and "could not be authenticated" in refused.stderr
        again = leadgate("review", "revoke-officer", "cco-marta", "--by", "mlro-kwame",
                         "--token", kwame, *cfg)
        assert again.returncode == 2
        assert again.stderr.startswith("error: ") and again.stderr.count("\n") == 1
        assert "'cco-marta' has no token to revoke" in again.stderr

        records = [r for r in _credentials(env) if r["payload"]["officer"] == "cco-marta"]
        assert [(r["payload"]["officer"], r["payload"]["action"]) for r in records] == [
            ("cco-marta", "issued"), ("cco-marta", "replaced"), ("cco-marta", "revoked")]
        assert all(r["payload"]["in_policy"] and r["payload"]["os_user"] for r in records)
        # each names the credential it issued or ended; the rejection names the one it used
        issued, replaced, ended = (r["payload"] for r in records)
        assert issued["credential"] == credential_of(hashlib.sha256(old.encode()).hexdigest())
        assert replaced["ended_credential"] == issued["credential"]
        assert replaced["credential"] == credential_of(hashlib.sha256(new.encode()).hexdigest())
        assert ended["credential"] is None and ended["ended_credential"] == replaced["credential"]
        engine = env.engine()
        [action] = [e["payload"] for e in ledger_entries(engine) if e["kind"] == "review_action"]
        engine.dispose()
        assert action["action"] == "reject"
        assert action["officer"]["credential"] == replaced["credential"]
        stored = json.dumps(records)
        for token in (old, new):  # neither the token nor its hash is in the ledger
            assert token not in stored
            assert hashlib.sha256(token.encode()).hexdigest() not in stored
        verify = leadgate("audit", "verify", *cfg)
        assert verify.returncode == 0, verify.stderr
        assert "officer_credential" in verify.stdout
    finally:
        env.sb.stop()


def test_a_damaged_key_file_is_one_line_and_is_not_overwritten(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=60)
    try:
        cfg = ("--config", str(env.config))
        token = leadgate("review", "add-officer", "cco-marta", *cfg).stdout.splitlines()[-1]
        assert sync_run(env, "salesforce").returncode == 0
        items = json.loads(leadgate("review", "list", "--json", *cfg).stdout)
        keys = tmp_path / "leadgate-officers.json"
        assert keys.is_file()
        for damaged in ('{"cco-marta": {"sha256": "ab', "[]", '{"cco-marta": "ab"}'):
            keys.write_text(damaged)
            before = len(_credentials(env))
            for args in (("review", "add-officer", "mlro-kwame"),
                         ("review", "revoke-officer", "cco-marta")):
                proc = leadgate(*args, *cfg)
                assert proc.returncode == 2, (damaged, args, proc.stderr)
                assert proc.stderr == (
                    f"error: {keys}: the officer key file is not leadgate's JSON (fix: restore "
                    "it from a backup: new tokens need an officer's authentication, which the "
                    "file holds)\n"), proc.stderr
                assert keys.read_text() == damaged  # the other officers' tokens are not lost
            proc = _reject(env, items[0]["id"], "cco-marta", token)
            assert proc.returncode == 2 and "not leadgate's JSON" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
            assert len(_credentials(env)) == before
        status = json.loads(leadgate("review", "list", "--json", *cfg).stdout)
        assert status[0]["id"] == items[0]["id"] and status[0]["status"] == "open"
    finally:
        env.sb.stop()


def test_the_key_file_is_the_one_leadgate_yaml_names_and_no_variable_redirects_it(
        tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=40)
    try:
        cfg = ("--config", str(env.config))
        keys = tmp_path / "secure" / "officers.json"
        keys.parent.mkdir()
        env.config.write_text(env.config.read_text() + f"officer_keys: {keys}\n")
        token = leadgate("review", "add-officer", "cco-marta", *cfg).stdout.splitlines()[-1]
        assert keys.exists() and not (tmp_path / "leadgate-officers.json").exists()
        assert sync_run(env, "salesforce").returncode == 0
        items = json.loads(leadgate("review", "list", "--json", *cfg).stdout)

        # a key file of one's own making, pointed at by the variable leadgate once read
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps({"cco-marta": {
            "sha256": hashlib.sha256(b"letmein").hexdigest(), "created_at": "x",
            "created_by": "x"}}))
        refused = leadgate("review", "reject", str(items[0]["id"]), "--officer", "cco-marta",
                           "--token", "letmein", *cfg,
                           env={"LEADGATE_OFFICER_KEYS": str(forged)})
        assert refused.returncode == 2 and "could not be authenticated" in refused.stderr
        assert _reject(env, items[0]["id"], "cco-marta", token).returncode == 0
    finally:
        env.sb.stop()


def test_a_revoked_officers_pending_approval_no_longer_counts(tmp_path: Path) -> None:
    """Four eyes: the first officer approves an override, is revoked, and a second officer
    approves. The first pair of eyes is gone, so the second approval is a first one again."""
    env = start_env(tmp_path, leads=60)
    try:
        cfg = ("--config", str(env.config))
        tokens = {o: issue_token(env, o) for o in ("cco-marta", "mlro-kwame", "co-difc-noor")}
        assert sync_run(env, "salesforce").returncode == 0
        items = json.loads(leadgate("review", "list", "--json", *cfg).stdout)
        item = next(x for x in items if x["reason"] == "no_licensed_team")

        def approve(officer: str) -> Any:
            return leadgate("review", "approve", str(item["id"]), "--team", "uk_retail",
                            "--rep", "alice", "--officer", officer, "--token", tokens[officer],
                            *cfg)

        first = approve("cco-marta")
        assert first.returncode == 0 and "second officer must approve" in first.stdout
        assert leadgate("review", "revoke-officer", "cco-marta", "--by", "cco-marta",
                        "--token", tokens["cco-marta"], *cfg).returncode == 0
        second = approve("mlro-kwame")
        assert second.returncode == 0, second.stderr
        assert "second officer must approve" in second.stdout  # not assigned on one pair
        engine = env.engine()
        actions = [e["payload"] for e in ledger_entries(engine) if e["kind"] == "review_action"]
        engine.dispose()
        assert [a["action"] for a in actions] == ["approve_pending_second_officer"] * 2
        assert [a["officer"] for a in actions[1]["lapsed_approvals"]] == ["cco-marta"]
        assert [a["officer"] for a in actions[1]["approvals"]] == ["mlro-kwame"]
        third = approve("co-difc-noor")
        assert third.returncode == 0 and "CRM write ok" in third.stdout, third.stdout
    finally:
        env.sb.stop()


def test_a_token_the_ledger_never_recorded_as_issued_does_not_count(tmp_path: Path) -> None:
    """Whoever can write the key file could put an officer's hash there by hand and act as that
    officer with no `officer_credential` entry. The ledger, not the file, says who was given a
    token: such a token is refused, for review actions and for `audit erase` alike, and the
    attempt is recorded. So is a token whose issue an older leadgate recorded without naming
    the credential."""
    env = start_env(tmp_path, leads=40)
    try:
        cfg = ("--config", str(env.config))
        marta = leadgate("review", "add-officer", "cco-marta", *cfg).stdout.splitlines()[-1]
        assert sync_run(env, "salesforce").returncode == 0
        items = json.loads(leadgate("review", "list", "--json", *cfg).stdout)
        keys = tmp_path / "leadgate-officers.json"
        held = json.loads(keys.read_text())
        held["mlro-kwame"] = {"sha256": hashlib.sha256(b"handmade").hexdigest(),
                              "created_at": "x", "created_by": "x"}
        keys.write_text(json.dumps(held))
        before = len(_credentials(env))

        proc = _reject(env, items[0]["id"], "mlro-kwame", "handmade")
        assert proc.returncode == 2
        assert proc.stderr == (
            f"error: {keys}: officer 'mlro-kwame''s token is not the credential the ledger "
            "recorded as issued to them (the key file was changed outside leadgate) (fix: ask "
            "another officer to issue you a new token with `leadgate review add-officer "
            "mlro-kwame --by THEIR_ID`)\n"), \
            proc.stderr
        erase = leadgate("audit", "erase", f"salesforce:{items[0]['record_id']}", "--reason",
                         "request", "--officer", "mlro-kwame", "--token", "handmade", *cfg)
        assert erase.returncode == 2 and "the key file was changed outside" in erase.stderr, \
            erase.stderr
        # an older leadgate's record of an issue, without the credential's name
        engine = env.engine()
        try:
            Ledger(engine, key_path=tmp_path / "ledger-signing.key").append_batch([EntryIn(
                "officer_credential", None, {"officer": "mlro-kwame", "action": "issued"})])
            attempts = [e["payload"] for e in ledger_entries(engine)
                        if e["kind"] == "officer_auth_refused"]
        finally:
            engine.dispose()
        assert [(a["officer"], a["action"]) for a in attempts] == [
            ("mlro-kwame", "reject"), ("mlro-kwame", "erase")]
        proc = _reject(env, items[0]["id"], "mlro-kwame", "handmade")
        assert proc.returncode == 2
        assert "token was issued before leadgate recorded credentials" in proc.stderr

        assert len(_credentials(env)) == before + 1  # only the entry written above
        assert json.loads(leadgate("review", "list", "--json", *cfg).stdout)[0]["status"] \
            == "open"
        # the officer whose token the ledger recorded acts as before
        assert _reject(env, items[0]["id"], "cco-marta", marta).returncode == 0
    finally:
        env.sb.stop()


def test_an_approval_lapses_when_its_officer_is_given_a_new_token(tmp_path: Path) -> None:
    """Revoking a token and issuing a new one is what is done about a stolen token: a first
    approval given with the old one must not count once its officer holds the new one, whether
    the old token was replaced at once or revoked first; nor once revoked, even with the old
    key file put back (the ledger, not the file, says which credential is current)."""
    env = start_env(tmp_path, leads=200)
    try:
        cfg = ("--config", str(env.config))
        tokens = {o: issue_token(env, o) for o in ("cco-marta", "mlro-kwame")}
        assert sync_run(env, "salesforce").returncode == 0
        items = json.loads(leadgate("review", "list", "--json", *cfg).stdout)
        overrides = [x for x in items
                     if x["reason"] in ("no_licensed_team", "unlicensed_jurisdiction")]
        assert len(overrides) >= 2

        def approve(item: dict[str, Any], officer: str) -> Any:
            return leadgate("review", "approve", str(item["id"]), "--team", "uk_retail",
                            "--rep", "alice", "--officer", officer, "--token", tokens[officer],
                            *cfg)

        keys = tmp_path / "leadgate-officers.json"
        for item, steps in zip(overrides[:3], (("add-officer",),
                                               ("revoke-officer", "add-officer"),
                                               ("revoke-officer", "put the key file back")),
                               strict=True):
            first = approve(item, "cco-marta")
            assert first.returncode == 0 and "second officer must approve" in first.stdout
            before = keys.read_bytes()
            for step in steps:
                if step == "put the key file back":  # a backup restored over the revocation
                    keys.write_bytes(before)
                    continue
                if step == "add-officer" and "revoke-officer" in steps:
                    # revoked: another officer issues the new token, and marta makes it hers
                    # (rotation), as four eyes needs
                    tokens["cco-marta"] = _add(env, "cco-marta", "mlro-kwame",
                                               tokens["mlro-kwame"])
                    tokens["cco-marta"] = _add(env, "cco-marta", "cco-marta",
                                               tokens["cco-marta"])
                    continue
                proc = leadgate("review", step, "cco-marta", "--by", "cco-marta",
                                "--token", tokens["cco-marta"], *cfg)
                assert proc.returncode == 0, proc.stderr
                if step == "add-officer":
                    tokens["cco-marta"] = proc.stdout.splitlines()[-1]
            second = approve(item, "mlro-kwame")
            assert second.returncode == 0, second.stderr
            assert "second officer must approve" in second.stdout, (steps, second.stdout)
            engine = env.engine()
            action = [e["payload"] for e in ledger_entries(engine)
                      if e["kind"] == "review_action"][-1]
            engine.dispose()
            assert [a["officer"] for a in action["lapsed_approvals"]] == ["cco-marta"]
            assert [a["officer"] for a in action["approvals"]] == ["mlro-kwame"]
            if "add-officer" in steps:  # the new token is a pair of eyes again
                third = approve(item, "cco-marta")
                assert third.returncode == 0 and "CRM write ok" in third.stdout, third.stdout
    finally:
        env.sb.stop()


def test_showing_and_erasing_personal_data_are_signed_at_once(tmp_path: Path) -> None:
    """`audit explain --show-personal` and `audit erase` each sign a checkpoint over the entry
    they record, so neither can be cut off the ledger's tail unnoticed before the next run."""
    import sqlalchemy as sa

    from audit import schema

    env = start_env(tmp_path, leads=40)
    try:
        cfg = ("--config", str(env.config))
        marta = leadgate("review", "add-officer", "cco-marta", *cfg).stdout.splitlines()[-1]
        assert sync_run(env, "salesforce").returncode == 0
        record = json.loads(leadgate("review", "list", "--json", *cfg).stdout)[0]["record_id"]
        who = ("--officer", "cco-marta", "--token", marta)
        steps = {"personal_data_access": ("explain", "--show-personal", "--reason",
                                          "GDPR art. 15 request DSR-2026-0412"),
                 "erasure": ("erase", "--reason", "GDPR art. 17 request DSR-2026-0412")}
        for kind, (command, *args) in steps.items():
            proc = leadgate("audit", command, f"salesforce:{record}", *args, *who, *cfg)
            assert proc.returncode == 0, proc.stderr
            engine = env.engine()
            try:
                entries = ledger_entries(engine)
                with engine.connect() as conn:
                    signed = conn.execute(sa.select(sa.func.max(schema.checkpoints.c.size))
                                          ).scalar_one()
            finally:
                engine.dispose()
            [recorded] = [e for e in entries if e["kind"] == kind]
            assert signed >= recorded["chain"]["seq"], kind
            assert signed == len(entries) - 1  # only the checkpoint's own entry after it
    finally:
        env.sb.stop()


def _refusals(env: Any) -> list[dict[str, Any]]:
    engine = env.engine()
    try:
        return [e["payload"] for e in ledger_entries(engine)
                if e["kind"] == "officer_auth_refused"]
    finally:
        engine.dispose()


def test_issuing_or_revoking_needs_an_officer_once_one_holds_a_token(tmp_path: Path) -> None:
    """Whoever can run leadgate with its config (the cron account, a RevOps admin) must not be
    able to give themselves an officer's token, or silently replace a real officer's: only
    the ledger's first credential is issued without an officer's authentication."""
    env = start_env(tmp_path, leads=20)
    try:
        cfg = ("--config", str(env.config))
        keys = tmp_path / "leadgate-officers.json"
        boot = leadgate("review", "add-officer", "cco-marta", *cfg)
        assert boot.returncode == 0, boot.stderr
        marta = boot.stdout.strip().splitlines()[-1]

        held = keys.read_bytes()
        unauthenticated = (("add-officer", "mlro-kwame"), ("add-officer", "cco-marta"),
                           ("revoke-officer", "cco-marta"))
        for args in unauthenticated:
            proc = leadgate("review", *args, *cfg)
            assert proc.returncode == 2, (args, proc.stderr)
            assert proc.stderr.startswith("error: --by: ") and proc.stderr.count("\n") == 1
            assert "needs an authenticated officer" in proc.stderr and "pass --by" in proc.stderr
        wrong = (("add-officer", "mlro-kwame", "--by", "cco-marta", "--token", "guess"),
                 ("add-officer", "co-difc-noor", "--by", "co-difc-noor", "--token", "mine"),
                 ("revoke-officer", "cco-marta", "--by", "cco-marta", "--token", "guess"))
        for args in wrong:
            proc = leadgate("review", *args, *cfg)
            assert proc.returncode == 2 and "could not be authenticated" in proc.stderr, args
        assert keys.read_bytes() == held  # nothing issued, replaced or revoked
        assert len(_credentials(env)) == 1
        [first] = [r["payload"] for r in _credentials(env)]
        assert first["bootstrap"] is True and first["authorised_by"] is None
        assert [(r["officer"], r["action"]) for r in _refusals(env)] == [
            (None, "add_officer"), (None, "add_officer"), (None, "revoke_officer"),
            ("cco-marta", "add_officer"), ("co-difc-noor", "add_officer"),
            ("cco-marta", "revoke_officer")]
        assert all(marta not in json.dumps(r) for r in _refusals(env))

        # marta's token, from the environment as for the other officer commands
        proc = leadgate("review", "add-officer", "mlro-kwame", "--by", "cco-marta", *cfg,
                        env={"LEADGATE_OFFICER_TOKEN": marta})
        assert proc.returncode == 0, proc.stderr
        kwame = proc.stdout.strip().splitlines()[-1]
        issued = _credentials(env)[-1]["payload"]
        assert (issued["officer"], issued["action"], issued["bootstrap"]) == (
            "mlro-kwame", "issued", False)
        assert issued["authorised_by"]["officer"] == "cco-marta"
        assert issued["authorised_by"]["credential"] == first["credential"]
        assert json.loads(keys.read_text())["mlro-kwame"]["authorised_by"] == "cco-marta"

        # the last credential is kept: with none, anyone could bootstrap again
        proc = leadgate("review", "revoke-officer", "cco-marta", "--by", "cco-marta",
                        "--token", marta, *cfg)
        assert proc.returncode == 0, proc.stderr
        proc = leadgate("review", "revoke-officer", "mlro-kwame", "--by", "mlro-kwame",
                        "--token", kwame, *cfg)
        assert proc.returncode == 2 and "the last officer credential" in proc.stderr
        assert "mlro-kwame" in json.loads(keys.read_text())
        # ... and a revoked officer authorises nothing
        proc = leadgate("review", "add-officer", "cco-marta", "--by", "cco-marta",
                        "--token", marta, *cfg)
        assert proc.returncode == 2 and "could not be authenticated" in proc.stderr
        assert leadgate("audit", "verify", *cfg).returncode == 0
    finally:
        env.sb.stop()


def test_four_eyes_are_not_an_officer_and_a_token_they_issued(tmp_path: Path) -> None:
    """An officer who issues another officer's token has seen it printed: the two approving
    one override would be one person. So is an officer whose token was issued with such a
    token. Once the holder replaces it with their own (rotation), it counts."""
    env = start_env(tmp_path, leads=60)
    try:
        cfg = ("--config", str(env.config))
        marta = issue_token(env, "cco-marta")
        kwame = _add(env, "mlro-kwame", "cco-marta", marta)
        noor = _add(env, "co-difc-noor", "mlro-kwame", kwame)
        assert sync_run(env, "salesforce").returncode == 0
        items = json.loads(leadgate("review", "list", "--json", *cfg).stdout)
        item = next(x for x in items if x["reason"] == "no_licensed_team")

        def approve(officer: str, token: str) -> Any:
            return leadgate("review", "approve", str(item["id"]), "--team", "uk_retail",
                            "--rep", "alice", "--officer", officer, "--token", token, *cfg)

        first = approve("cco-marta", marta)
        assert first.returncode == 0 and "second officer must approve" in first.stdout
        for officer, token in (("mlro-kwame", kwame), ("co-difc-noor", noor)):
            proc = approve(officer, token)
            assert proc.returncode == 2, proc.stdout
            assert proc.stderr.count("\n") == 1
            assert f"{officer}'s token was issued on cco-marta's authority" in proc.stderr
            assert f"add-officer {officer} --by {officer}" in proc.stderr
        engine = env.engine()
        entries = ledger_entries(engine)
        engine.dispose()
        assert [e["payload"]["action"] for e in entries if e["kind"] == "review_action"] == [
            "approve_pending_second_officer"]
        assert [e["payload"]["officer"]["officer"] for e in entries
                if e["kind"] == "officer_action_refused"] == ["mlro-kwame", "co-difc-noor"]
        [open_item] = [x for x in json.loads(leadgate("review", "list", "--json", *cfg).stdout)
                       if x["id"] == item["id"]]
        assert open_item["status"] == "awaiting_second_officer"

        kwame = _add(env, "mlro-kwame", "mlro-kwame", kwame)  # now only kwame knows it
        second = approve("mlro-kwame", kwame)
        assert second.returncode == 0 and "CRM write ok" in second.stdout, second.stderr
    finally:
        env.sb.stop()
