"""`leadgate init`, `install --print-metadata` and `connect` through the real command."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from connectors.config import load_config
from connectors.mapping import default_mapping
from sync.demo import copy_policy


def test_init_writes_a_template_that_loads_and_a_signing_key(leadgate: Any,
                                                             tmp_path: Path) -> None:
    done = leadgate("init", cwd=str(tmp_path), env={"LEADGATE_SIGNING_KEY": ""})
    assert done.returncode == 0, done.stderr
    config = load_config(tmp_path / "leadgate.yaml")
    assert {s.kind for s in config.sources.values()} == {"salesforce", "hubspot"}
    # the template targets the sandbox's seeded field names: the same as the default mapping
    for name, source in config.sources.items():
        assert source.mapping == default_mapping(source.kind), name
    key = tmp_path / "leadgate-signing.key"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600
    again = leadgate("init", cwd=str(tmp_path))
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in \
        again.stderr


def test_a_policy_not_written_yet_is_one_line_naming_the_setting(leadgate: Any,
                                                                  tmp_path: Path) -> None:
    # right after `leadgate init`: the policy it points at does not exist yet
    assert leadgate("init", cwd=str(tmp_path)).returncode == 0
    for args in (("sync", "run"), ("sync", "status"), ("review", "list")):
        done = leadgate(*args, cwd=str(tmp_path))
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr == (
            f"error: leadgate.yaml: policy: {tmp_path.resolve() / 'policy'} does not exist "
            "(fix: write your routing policy there or point `policy:` at it; `leadgate demo` "
            "writes the example policy to start from)\n"), args
    assert not (tmp_path / "leadgate.db").exists()  # nothing made before the setting is fixed


def test_print_metadata_is_an_sfdx_package(leadgate: Any, tmp_path: Path) -> None:
    leadgate("init", cwd=str(tmp_path))
    done = leadgate("install", "salesforce", "--print-metadata", cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "==> manifest/package.xml <==" in out and "<members>Lead.LeadGate_Status__c" in out
    assert "force-app/main/default/queues/Compliance_Review.queue-meta.xml" in out
    assert out.count(".field-meta.xml <==") == 6


def test_connect_names_the_missing_secret_without_a_traceback(leadgate: Any,
                                                              tmp_path: Path) -> None:
    leadgate("init", cwd=str(tmp_path))
    done = leadgate("connect", "hubspot", cwd=str(tmp_path),
                    env={"LEADGATE_HUBSPOT_TOKEN": ""})
    assert done.returncode == 2  # the check could not begin (connectors/README.md)
    assert "LEADGATE_HUBSPOT_TOKEN is not set" in done.stderr
    assert "Traceback" not in done.stderr
    # every secret that cannot be read is named at once, on one line
    unset = {k: "" for k in ("LEADGATE_SF_CLIENT_ID", "LEADGATE_SF_CLIENT_SECRET",
                             "LEADGATE_SF_USERNAME", "LEADGATE_SF_PASSWORD",
                             "LEADGATE_SF_SECURITY_TOKEN")}
    done = leadgate("connect", "salesforce", cwd=str(tmp_path), env=unset)
    assert done.returncode == 2, done.stdout + done.stderr
    named = [k for k in unset if f"{k} is not set" in done.stderr]
    assert len(named) >= 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_bad_config_is_one_line_naming_the_key(leadgate: Any, tmp_path: Path) -> None:
    (tmp_path / "leadgate.yaml").write_text(
        "sources:\n  crm:\n    kind: hubspot\n    connection: {token: pat-na1-XYZ}\n")
    done = leadgate("connect", "hubspot", cwd=str(tmp_path))
    assert done.returncode == 2
    assert "sources.crm.connection.token" in done.stderr and "XYZ" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_install_and_connect_against_the_sandbox(leadgate: Any, sandbox: Any,
                                                 tmp_path: Path) -> None:
    import os

    import yaml

    sb = sandbox(leads=10, contacts=10, install_leadgate_fields=False)
    creds = sb.salesforce_credentials
    config = {"sources": {
        "salesforce": {"kind": "salesforce", "connection": {
            "login_url": sb.salesforce_instance_url, "auth": "password",
            "username": creds["username"], "client_id": creds["client_id"],
            "client_secret": {"env": "LG_T_SF_SECRET"}, "password": {"env": "LG_T_SF_PASSWORD"},
            "security_token": {"env": "LG_T_SF_TOKEN"}, "ca_file": str(sb.ca_file)}},
        "hubspot": {"kind": "hubspot", "review_owner_id": sb.hubspot_review_owner_id,
                    "connection": {"base_url": sb.hubspot_base_url,
                                   "token": {"env": "LG_T_HS_TOKEN"}}}}}
    (tmp_path / "leadgate.yaml").write_text(yaml.safe_dump(config))
    copy_policy(tmp_path / "policy")  # connect checks the mapping against it too
    env = {k: os.environ[k] for k in ("LG_T_SF_SECRET", "LG_T_SF_PASSWORD", "LG_T_SF_TOKEN",
                                      "LG_T_HS_TOKEN")}
    run = lambda *a: leadgate(*a, cwd=str(tmp_path), env=env)  # noqa: E731
    dry = run("install", "salesforce", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("would create: field Lead.") == 6
    for crm in ("salesforce", "hubspot"):
        first = run("install", crm)
        assert first.returncode == 0, first.stderr
        assert "created:" in first.stdout
        second = run("install", crm)
        assert "created:" not in second.stdout
        assert f"nothing to do: leadgate is already installed in {crm}" in second.stdout
        check = run("connect", crm)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "connection and mapping are in order" in check.stdout
        assert env["LG_T_SF_SECRET"] not in check.stdout + check.stderr


def test_connect_reports_what_the_policy_cannot_use(leadgate: Any, sandbox: Any,
                                                    tmp_path: Path) -> None:
    """The policy must exist and load, and the codes the value maps give must be ones it
    knows: else `sync run` fails, or refuses every lead with that value as invalid_lead."""
    import yaml

    from sync.demo import write_sandbox_config

    sb = sandbox(leads=10, contacts=10)
    mapping = {p: spec.model_dump(exclude_defaults=True) | {"field": spec.field}
               for p, spec in default_mapping("salesforce").items()}
    label = next(iter(mapping["product"]["values"]))
    mapping["product"]["values"][label] = "easy_savr"
    mapping["customer_type"]["values"]["Retail Customer"] = "retial"
    config = write_sandbox_config(sb, tmp_path, sources=("salesforce",),
                                  extra={"salesforce": {"mapping": mapping}})
    missing = leadgate("connect", "salesforce", "--config", str(config))
    assert missing.returncode == 1 and "does not exist" in missing.stdout, missing.stdout
    assert "in order" not in missing.stdout
    copy_policy(tmp_path / "policy")
    wrong = leadgate("connect", "salesforce", "--config", str(config))
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert f"mapping.product.values: {label!r} maps to 'easy_savr', which is not a product " \
        "of policy northwind-routing" in wrong.stdout, wrong.stdout
    assert "mapping.customer_type.values: 'Retail Customer' maps to 'retial'" in wrong.stdout
    assert "2 problem(s) found" in wrong.stderr
    fixed = yaml.safe_load(config.read_text())
    del fixed["sources"]["salesforce"]["mapping"]
    config.write_text(yaml.safe_dump(fixed))
    ok = leadgate("connect", "salesforce", "--config", str(config))
    assert ok.returncode == 0 and "in order" in ok.stdout, ok.stdout + ok.stderr
