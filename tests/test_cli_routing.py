"""`leadgate route` and `leadgate policy ...` through click, and once as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sync.cli import main

ROOT = Path(__file__).parent.parent
BASIC = str(ROOT / "tests" / "routing_core" / "policies" / "basic.yaml")
EXAMPLE = ROOT / "examples" / "policy"
AT = "2026-11-24T10:00:00Z"


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def decisions(result: Result) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_route_one_json_lead(tmp_path: Path) -> None:
    lead = write(tmp_path, "lead.json", json.dumps(
        {"id": "L1", "source": "salesforce", "jurisdiction": "UK", "customer_type": "retail",
         "product": "easy_saver"}))
    result = cli("route", "--policy", BASIC, "--lead", lead, "--at", AT, "--json",
                 "--no-screening")
    assert result.exit_code == 0, result.output
    [decision] = decisions(result)
    assert decision["outcome"] == "assigned" and decision["team"]["id"] == "uk_retail"
    assert decision["rep"]["crm_id"] == "005A"
    assert decision["decided_at"] == AT


def test_rotation_carries_across_a_jsonl_run_and_bad_lines_are_refused(tmp_path: Path) -> None:
    good = json.dumps({"jurisdiction": "GB", "customer_type": "retail", "product": "easy_saver"})
    text = "\n".join([good, good, "{not json", good, json.dumps(
        {"id": "B1", "jurisdiction": "Narnia", "customer_type": "retial",
         "investable_assets": {"amount": "x", "currency": "GBP"}})]) + "\n"
    result = cli("route", "--policy", BASIC, "--lead", write(tmp_path, "leads.jsonl", text),
                 "--at", AT, "--json", "--no-screening")
    assert result.exit_code == 0, result.output
    out = decisions(result)
    assert [d["outcome"] for d in out] == ["assigned", "assigned", "refused", "assigned",
                                           "refused"]
    assert [d["rep"]["id"] for d in out if d["rep"]] == ["alice", "bob", "alice"]
    assert out[2]["reason"] == "invalid_lead"
    assert "leads.jsonl line 3: not valid JSON" in out[2]["problems"][0]
    problems = out[4]["problems"]
    assert len(problems) == 3 and all(p.startswith("leads.jsonl line 5: ") for p in problems)
    assert out[4]["lead"]["id"] == "B1"


def test_csv_with_dotted_columns_and_a_bad_row(tmp_path: Path) -> None:
    text = ("id,jurisdiction,customer_type,product,investable_assets.amount,"
            "investable_assets.currency,assessments.appropriateness\n"
            "C1,GB,professional,private_mandate,2500000,GBP,\n"
            "C2,GB,retail,structured_note,,,Passed\n"
            "C3,XX,whale,easy_saver,12,ZZZ,\n"
            "C4,GB,retail,easy_svaer,,,\n")
    result = cli("route", "--policy", BASIC, "--lead", write(tmp_path, "leads.csv", text),
                 "--at", AT, "--json", "--no-screening")
    assert result.exit_code == 0, result.output
    c1, c2, c3, c4 = decisions(result)
    assert c4["reason"] == "invalid_lead"
    assert c4["problems"] == ["leads.csv row 5: product: 'easy_svaer' is not a product of "
                              "policy test-routing"]
    assert c1["team"]["id"] == "uk_wealth"
    assert c2["outcome"] == "assigned"
    assert c3["reason"] == "invalid_lead" and len(c3["problems"]) == 3
    assert all("leads.csv row 4" in p for p in c3["problems"])


def test_an_unknown_product_is_listed_with_the_other_problems_of_a_bad_lead(
        tmp_path: Path) -> None:
    lead = write(tmp_path, "lead.json", json.dumps(
        {"id": "M1", "jurisdiction": "GB", "customer_type": "retail", "product": "crypto_wallet",
         "investable_assets": {"amount": "10", "currency": "EUX"}}))
    result = cli("route", "--policy", BASIC, "--lead", lead, "--at", AT, "--json",
                 "--no-screening")
    [decision] = decisions(result)
    assert decision["reason"] == "invalid_lead"
    assert [p.split(": ", 2)[1] for p in decision["problems"]] == [
        "investable_assets.currency", "product"]
    assert decision["problems"][1].endswith("'crypto_wallet' is not a product of policy "
                                            "test-routing")


def test_stdin_and_summary_output() -> None:
    lead = json.dumps({"id": "S1", "jurisdiction": "US-TX", "product": "term_life"})
    result = cli("route", "--policy", BASIC, "--lead", "-", "--at", AT, "--no-screening",
                 input=lead)
    assert result.exit_code == 0
    assert result.stdout.split("\t")[:3] == ["file:S1", "refused", "unlicensed_jurisdiction"]
    assert "0 assigned, 1 refused" in result.stderr


def test_explain_reads_like_an_account(tmp_path: Path) -> None:
    lead = write(tmp_path, "lead.json", json.dumps(
        {"id": "E1", "jurisdiction": "GB", "customer_type": "retail", "product": "easy_saver"}))
    result = cli("route", "--policy", BASIC, "--lead", lead, "--at", AT, "--explain",
                 "--no-screening")
    text = result.stdout
    assert "Outcome: ASSIGNED to alice (Alice) in team uk_retail" in text
    assert "Team uk_direct: no authority: licence FCA-direct expired 2026-10-31" in text
    assert "carol: unavailable" in text
    assert "Rule uk-retail: HOLDS" in text


def test_unreadable_screening_list_refuses_every_lead(tmp_path: Path) -> None:
    lead = write(tmp_path, "lead.json", json.dumps(
        {"id": "E1", "jurisdiction": "GB", "customer_type": "retail", "product": "easy_saver"}))
    result = cli("route", "--policy", BASIC, "--lead", lead, "--at", AT, "--json")
    assert decisions(result)[0]["reason"] == "screening_unavailable"
    assert "lists/sdn.csv" in result.stderr and "unusable" in result.stderr
    assert "--no-screening" in result.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (["--lead", "/nonexistent/leads.json"], "/nonexistent/leads.json: no such lead file"),
    (["--at", "yesterday"], "--at: --at 'yesterday' is not an ISO 8601 time"),
    (["--at", "2026-11-24T10:00:00"], "has no time zone"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    base = {"--policy": BASIC, "--lead": write(tmp_path, "l.json", "{}"), "--at": AT}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    result = cli("route", *flat)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.output


def test_broken_policy_is_one_line_naming_file_line_and_path(tmp_path: Path) -> None:
    text = Path(BASIC).read_text().replace("products: [uk_wealth, uk_retail]",
                                           "products: [uk_wealth, uk_retail]")
    text = text.replace("route_to: [eu_mortgages]", "route_to: [eu_mortages]")
    policy = write(tmp_path, "broken.yaml", text)
    lead = write(tmp_path, "l.json", "{}")
    result = cli("route", "--policy", policy, "--lead", lead)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "broken.yaml:" in line and "rules[2].route_to[0]: unknown team 'eu_mortages'" in line


def test_policy_validate(tmp_path: Path) -> None:
    ok = cli("policy", "validate", BASIC)
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: policy test-routing version 1.0")
    text = (Path(BASIC).read_text().replace("route_to: [difc]", "route_to: [difk]")
            .replace("hours: 24", "hours: -24"))
    bad = cli("policy", "validate", write(tmp_path, "bad.yaml", text))
    assert bad.exit_code == 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "cooling_off[1].hours" in errors[0]
    assert "1 problem(s)" in bad.stderr


def test_policy_test_pass_and_fail(tmp_path: Path) -> None:
    ok = cli("policy", "test", BASIC, "--at", AT)
    assert ok.exit_code == 0 and "2 passed, 0 failed" in ok.stdout
    text = Path(BASIC).read_text().replace(
        "expect: { outcome: assigned, team: uk_retail }",
        "expect: { outcome: assigned, team: uk_direct }")
    text += ("  - name: sanctions hit is refused\n"
             "    lead: { jurisdiction: GB, customer_type: retail, product: easy_saver,\n"
             "            screening: { sanctions: true } }\n"
             "    expect: { outcome: refused, reason: sanctions_hit }\n")
    failed = cli("policy", "test", write(tmp_path, "p.yaml", text), "--at", AT)
    assert failed.exit_code == 1
    assert "FAIL  UK retail saver goes to uk_retail" in failed.stdout
    assert "team: expected uk_direct, got uk_retail" in failed.stdout
    assert "team uk_direct: licence FCA-direct expired 2026-10-31" in failed.stdout
    assert "PASS  sanctions hit is refused" in failed.stdout
    assert "2 passed, 1 failed" in failed.stdout


def test_policy_show_fills_defaults() -> None:
    result = cli("policy", "show", BASIC)
    assert result.exit_code == 0
    assert "# digest sha256:" in result.stdout
    assert "assignment: round_robin" in result.stdout
    assert "team_choice: priority" in result.stdout
    shown = json.loads(cli("policy", "show", BASIC, "--json").stdout)
    assert shown["policy"]["teams"]["uk_retail"]["members"][1]["weight"] == 1


@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/policy not merged")
def test_example_policy_tests_pass() -> None:
    result = cli("policy", "test", str(EXAMPLE), "--at", "2026-11-25T10:00:00Z")
    assert result.exit_code == 0, result.stdout[-2000:]


def test_real_process(leadgate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lead = write(tmp_path, "lead.json", json.dumps(
        {"id": "P1", "source": "hubspot", "jurisdiction": "US-NY", "customer_type": "retail",
         "product": "term_life"}))
    proc = leadgate("route", "--policy", BASIC, "--lead", lead, "--at", AT, "--json",
                    "--no-screening", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    decision = json.loads(proc.stdout)
    assert decision["rep"]["id"] == "judy"
    assert decision["outreach"]["contact_window"]["timezone"] == "America/New_York"
    bad = leadgate("policy", "validate", str(tmp_path / "missing.yaml"), cwd=str(tmp_path))
    assert bad.returncode == 2 and "no such file or folder" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/policy not merged")
def test_example_sample_leads_get_their_expected_outcomes() -> None:
    leads = ROOT / "examples" / "leads" / "sample-leads.jsonl"
    expected = json.loads((ROOT / "examples" / "leads" / "expected-outcomes.json").read_text())
    result = cli("route", "--policy", str(EXAMPLE), "--lead", str(leads), "--at",
                 "2026-11-25T10:00:00Z", "--json")
    assert result.exit_code == 0, result.stderr
    got = decisions(result)
    assert len(got) == len(expected)
    for decision, want in zip(got, expected, strict=True):
        assert (decision["outcome"], decision["reason"]) == (want["outcome"], want["reason"]), (
            want)
        if want.get("team"):
            assert decision["team"]["id"] == want["team"], want


def test_validate_names_licences_that_do_not_count_today(tmp_path: Path) -> None:
    """A policy with a lapsed licence loads, and routes nothing that licence covered: validate
    says so (stderr), as it does for its other warnings; the result stays ok."""
    from datetime import date, datetime

    from routing_core.licensing import licence_notices
    from routing_core.policy import load_policy

    policy = load_policy(EXAMPLE)
    notices = licence_notices(policy, date(2026, 10, 15))
    assert ("team uk_direct: licence FCA-FRN-900101-direct (FCA) expires on 2026-10-31, in 16 "
            "day(s)") in notices
    assert ("team eu_mortgages: licence CSSF-B900212-MCD-DE-AT (CSSF) is valid only from "
            "2027-01-01") in notices
    later = licence_notices(policy, date(2026, 12, 1))
    assert ("team uk_direct: licence FCA-FRN-900101-direct (FCA) expired on 2026-10-31: "
            "nothing is routed under it") in later
    assert any(n.startswith("rep fatima of team us_life_tristate: licence NY-PR-1187606")
               for n in later)
    assert not any("uk_direct" in n for n in licence_notices(policy, date(2025, 6, 1)))
    shown = cli("policy", "validate", str(EXAMPLE))
    assert shown.exit_code == 0 and shown.stdout.startswith("ok: policy northwind-routing")
    today = licence_notices(policy, datetime.now(policy.tz).date())
    assert [f"warning: {n}" for n in today] == [
        line for line in shown.stderr.splitlines() if "licence" in line]
