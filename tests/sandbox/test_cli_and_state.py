"""`leadgate sandbox serve` as a real subprocess; persistence; the data generator."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from connectors.sandbox import Sandbox
from connectors.sandbox.generator import PEP_NAMES, SANCTIONED_NAMES, Generator
from connectors.sandbox.reps import from_policy

ROOT = Path(__file__).resolve().parents[2]


def _serve(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "sandbox", "serve", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    return proc, lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_where_to_point_leadgate_and_counts_on_exit(sig: int) -> None:
    proc, lines = _serve("--leads", "30", "--seed", "3", "--faults", "hubspot.owners:503@call=1")
    try:
        text = "".join(lines)
        sf_url = re.search(r"Salesforce instance URL : (\S+)", text)
        hs_url = re.search(r"HubSpot base URL        : (\S+)", text)
        ca = re.search(r"CA certificate        : (\S+)", text)
        token = re.search(r"private app token     : (\S+)", text)
        assert sf_url and hs_url and ca and token, text
        assert "username" in text and "30 Salesforce" in text
        r = requests.get(f"{hs_url.group(1)}/crm/v3/owners/",
                         headers={"Authorization": f"Bearer {token.group(1)}"})
        assert r.status_code == 503
        r = requests.get(f"{sf_url.group(1)}/services/data/", verify=ca.group(1))
        assert r.status_code == 200
    finally:
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "sandbox stopped; calls answered:" in out
    assert re.search(r"hubspot\.owners\s+1 calls\s+0 ok.*fault\.503=1", out), out
    assert re.search(r"salesforce\.versions\s+1 calls\s+1 ok", out), out


def test_serve_refuses_a_bad_fault_spec_in_one_line() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "sync.cli", "sandbox", "serve", "--faults",
                        "salesforce.query"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("error: --faults: cannot read fault rule")
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_persisted_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    with Sandbox(seed=9, leads=300, persist=state, install_leadgate_fields=True) as box:
        sf = box.salesforce_client()
        t = box.store.leads
        rid = t.id_of(42)
        sf.Lead.update(rid, {"LeadGate_Status__c": "assigned", "City": "Tromsø"})
        hs = box.hubspot_client()
        hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
            "inputs": [{"id": box.store.contacts.id_of(7),
                        "properties": {"leadgate_status": "refused"}}]})
        stamp = t.get(42, "SystemModstamp")
    assert state.stat().st_size < 20_000  # only what changed is stored
    with Sandbox(seed=1, leads=5, persist=state) as again:  # the file's seed and size win
        assert again.store.leads.n == 300 and again.seed == 9
        sf = again.salesforce_client()
        got = sf.query(f"SELECT City, LeadGate_Status__c, SystemModstamp FROM Lead "  # noqa: S608
                       f"WHERE Id = '{rid}'")["records"][0]
        assert (got["City"], got["LeadGate_Status__c"]) == ("Tromsø", "assigned")
        assert again.store.leads.get(42, "SystemModstamp") == stamp
        assert again.store.contacts.get(7, "leadgate_status") == "refused"


def test_generator_is_reproducible_varied_and_lazy() -> None:
    a, b, c = Generator(5, "salesforce"), Generator(5, "salesforce"), Generator(6, "salesforce")
    assert [a.person(i) for i in range(50)] == [b.person(i) for i in range(50)]
    assert [a.person(i) for i in range(50)] != [c.person(i) for i in range(50)]
    people = [a.person(i) for i in range(4000)]
    cultures = {t for p in people for t in p.tags if t.startswith("culture:")}
    assert len(cultures) >= 10  # several scripts and name orders
    assert any(not p.first for p in people)  # a name crammed into one field
    assert len({p.country_code for p in people}) >= 20
    assert len({p.state for p in people if p.country_code == "US"}) >= 8
    share = {k: sum(k in p.tags for p in people) / len(people)
             for k in ("sanctioned", "pep", "malformed")}
    assert 0.005 < share["sanctioned"] < 0.02 and 0.005 < share["pep"] < 0.02
    assert 0.01 < share["malformed"] < 0.04
    names = {(p.first, p.last) for p in people}
    assert names & set(SANCTIONED_NAMES) and names & set(PEP_NAMES)


def test_reps_come_from_the_policy_folder(tmp_path: Path) -> None:
    (tmp_path / "10-teams.yaml").write_text(
        "teams:\n  uk:\n    members:\n"
        "      - {id: zoe, name: Zoë Adams, crm: {salesforce: '005000000000009AAA',"
        " hubspot: '71009'}}\n"
        "      - {id: nocrm, name: No Crm}\n")
    reps = from_policy(tmp_path)
    assert [(r.salesforce_id, r.hubspot_id, r.name) for r in reps] == [
        ("005000000000009AAA", "71009", "Zoë Adams")]
    with Sandbox(seed=1, leads=5, reps=reps) as box:
        users = box.salesforce_client().query("SELECT Id, Name FROM User WHERE Name = 'Zoë Adams'")
        assert users["records"][0]["Id"] == "005000000000009AAA"
        owners = box.hubspot_client().crm.owners.owners_api.get_page()
        assert "71009" in {o.id for o in owners.results}


def test_sandbox_process_runs_out_of_process_with_admin_control() -> None:
    from connectors.sandbox import SandboxProcess

    with SandboxProcess(seed=2, leads=100, install_leadgate_fields=True) as sp:
        sf = sp.salesforce_client()
        assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 100
        sp.faults = "salesforce.query:503"
        from simple_salesforce.exceptions import SalesforceGeneralError

        with pytest.raises(SalesforceGeneralError):
            sf.query("SELECT COUNT() FROM Lead")
        sp.faults = None
        hs = sp.hubspot_client()
        assert hs.crm.contacts.search_api.do_search(
            public_object_search_request={"limit": 1}).total == 100
        live = sp.counts()
        assert live["salesforce.query"]["fault.503"] == 1 and live["hubspot.search"]["ok"] == 1
        r = requests.get(f"{sp.salesforce_instance_url}/_sandbox/counts", verify=str(sp.ca_file))
        assert r.status_code == 401  # the admin endpoint wants the admin token
    assert sp.counts()["salesforce"]["calls"] == 2  # final counts printed by the child
    from routing_core.errors import LeadgateError

    with pytest.raises(LeadgateError):
        SandboxProcess(faults="nonsense")


def test_a_busy_port_is_one_line_with_the_fix() -> None:
    from routing_core.errors import LeadgateError

    with Sandbox(seed=1, leads=1) as box:
        port = int(box.salesforce_instance_url.rsplit(":", 1)[1])
        with pytest.raises(LeadgateError) as e:
            Sandbox(seed=1, leads=1, salesforce_port=port)
        assert "cannot listen on 127.0.0.1" in str(e.value) and "fix:" in str(e.value)
