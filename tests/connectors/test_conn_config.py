"""Configuration, secrets, field mapping and cursors (no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import Cursor
from connectors.config import FieldMap, load_config, parse_config
from connectors.mapping import default_mapping, map_record, parse_crm_time
from routing_core.errors import LeadgateError

HS = {"kind": "hubspot", "connection": {"token": {"env": "LG_TEST_HS_TOKEN"}}}


def test_defaults_fill_mapping_and_limits() -> None:
    config = parse_config({"sources": {"crm": HS}})
    source = config.sources["crm"]
    assert source.mapping["id"].field == "hs_object_id"
    assert source.write_batch_size == 100 and source.limits.api_budget == 10_000


def test_inline_secret_is_refused_naming_the_key_without_echoing_it() -> None:
    data = {"sources": {"crm": {"kind": "hubspot", "connection": {"token": "pat-na1-SECRET"}}}}
    with pytest.raises(LeadgateError) as err:
        parse_config(data)
    text = str(err.value)
    assert "sources.crm.connection.token" in text and "{env: VARIABLE_NAME}" in text
    assert "SECRET" not in text


def test_every_problem_is_reported_with_its_key() -> None:
    data = {"sources": {"sf": {"kind": "salesforce", "bogus": 1,
                               "connection": {"auth": "jwt", "username": "u"},
                               "mapping": {"id": "Id", "prodcut": "X"}}}}
    with pytest.raises(LeadgateError) as err:
        parse_config(data)
    text = str(err.value)
    assert "sources.sf.bogus: unknown key" in text
    assert "sources.sf.connection: auth jwt needs client_id, private_key" in text
    assert "'prodcut' is not a lead field" in text


def test_unknown_kind_and_missing_sources() -> None:
    with pytest.raises(LeadgateError, match="sources"):
        parse_config({"database_url": "sqlite://"})
    with pytest.raises(LeadgateError, match="sources.x"):
        parse_config({"sources": {"x": {"kind": "pipedrive"}}})


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"sources": {"crm": HS}})
    ref = config.sources["crm"].connection.token  # type: ignore[union-attr]
    monkeypatch.delenv("LG_TEST_HS_TOKEN", raising=False)
    with pytest.raises(LeadgateError) as err:
        ref.resolve("sources.crm.connection.token")
    assert "LG_TEST_HS_TOKEN is not set" in str(err.value)
    assert "export LG_TEST_HS_TOKEN" in str(err.value)
    monkeypatch.setenv("LG_TEST_HS_TOKEN", "pat-123")
    secret = ref.resolve("k")
    assert secret.get_secret_value() == "pat-123" and "pat-123" not in repr(secret)
    path = tmp_path / "tok"
    path.write_text("pat-456\n")
    data = {"sources": {"crm": {**HS, "connection": {"token": {"file": str(path)}}}}}
    ref2 = parse_config(data).sources["crm"].connection.token  # type: ignore[union-attr]
    assert ref2.resolve("k").get_secret_value() == "pat-456"


def test_load_config_reports_yaml_line_and_resolves_relative_paths(tmp_path: Path) -> None:
    bad = tmp_path / "leadgate.yaml"
    bad.write_text("sources:\n  crm: [\n")
    with pytest.raises(LeadgateError, match=r"leadgate.yaml:\d+"):
        load_config(bad)
    bad.write_text("policy: pol\nsources:\n  crm:\n    kind: hubspot\n    connection:\n"
                   "      token: {env: X}\n")
    assert load_config(bad).policy == tmp_path / "pol"
    with pytest.raises(LeadgateError, match="leadgate init"):
        load_config(tmp_path / "missing.yaml")


def test_mapping_produces_parse_lead_raw_dict() -> None:
    record = {
        "Id": "00Q1", "FirstName": "Ada", "LastName": "Lovelace", "Country": "UK",
        "State": None, "Customer_Type__c": "Retail Customer", "Product_Interest__c": "Easy Saver",
        "Investable_Assets__c": 250000.5, "CurrencyIsoCode": "GBP",
        "Appropriateness__c": "Passed", "Phone_Consent__c": True, "Email_Consent__c": False,
        "First_Contact__c": "2026-11-20T10:00:00.000+0000", "Status": "Open",
    }
    raw, problems = map_record(record, default_mapping("salesforce"), source="sf")
    assert problems == []
    assert raw == {
        "source": "sf", "id": "00Q1", "first_name": "Ada", "last_name": "Lovelace",
        "country": "GB", "customer_type": "retail", "product": "easy_saver",
        "investable_assets": {"amount": "250000.5", "currency": "GBP"},
        "assessments": {"appropriateness": "passed"},
        "consent": {"phone": True, "email": False},
        "first_contact_at": "2026-11-20T10:00:00.000Z", "stage": "Open",
    }


def test_a_salesforce_record_with_a_currency_and_no_assets_is_a_lead_of_unknown_assets() -> None:
    # Multi-currency orgs set CurrencyIsoCode on every record; it was refused as invalid_lead.
    from routing_core.lead import parse_lead

    record = {"Id": "00Q1", "LastName": "Lovelace", "Country": "GB",
              "Investable_Assets__c": None, "CurrencyIsoCode": "GBP"}
    raw, problems = map_record(record, default_mapping("salesforce"), source="sf")
    assert problems == [] and raw["investable_assets"] == {"currency": "GBP"}
    assert parse_lead(raw).investable_assets is None


def test_mapping_collects_every_problem() -> None:
    record = {"hs_object_id": "7", "customer_type": "Gold Client", "product_interest": "Crypto",
              "phone_consent": "maybe", "investable_assets": "lots", "country": "Narnia"}
    raw, problems = map_record(record, default_mapping("hubspot"), source="hs",
                               mapping_key="sources.hs.mapping")
    # four mapping problems, and parse_lead's view of the rest (the unknown country)
    assert len(problems) == 5, problems
    assert any("Narnia" in p and "jurisdiction" in p for p in problems)
    assert any("'Gold Client' is not mapped for customer_type" in p and
               "sources.hs.mapping.customer_type.values" in p for p in problems)
    assert raw["country"] == "Narnia"  # passthrough: parse_lead judges countries


def test_values_the_ledger_cannot_record_are_problems_that_do_not_echo_them() -> None:
    # A lone surrogate (JSON "\\ud800") and an integer beyond 2**53-1 cannot be stored in the
    # ledger's canonical JSON: the record is refused with the field named, not the value.
    record = {"Id": "00Q1", "FirstName": "Ann\ud800", "LastName": "Lee", "Country": "GB",
              "LeadSource": 2**60, "Company": "Kraków\u00a0Ltd"}
    raw, problems = map_record(record, default_mapping("salesforce"), source="sf",
                               mapping_key="sources.sf.mapping")
    assert [p.split(":")[0] for p in problems[:2]] == ["FirstName", "LeadSource"]
    assert "not valid Unicode" in problems[0] and "2**53-1" in problems[1]
    assert "sources.sf.mapping.attributes.lead_source" in problems[1]
    assert not any("Ann" in p or str(2**60) in p for p in problems)
    assert raw["company"] == "Kraków\u00a0Ltd"  # other text beyond ASCII is fine
    edge = map_record({"Id": "00Q2", "LeadSource": 2**53 - 1}, default_mapping("salesforce"),
                      source="sf")[0]
    assert edge["attributes"] == {"lead_source": 2**53 - 1}


def test_fieldmap_shorthand() -> None:
    assert FieldMap.model_validate("Email").field == "Email"


def test_cursor_round_trip_and_order() -> None:
    a = Cursor(datetime(2026, 11, 20, 10, 0, tzinfo=UTC), "00QA")
    b = Cursor(datetime(2026, 11, 20, 10, 0, tzinfo=UTC), "00QB")
    assert a < b and Cursor.loads(a.dumps()) == a
    assert a.dumps() == "2026-11-20T10:00:00.000Z|00QA"
    with pytest.raises(LeadgateError):
        Cursor.loads("yesterday|x")


def test_crm_time_formats() -> None:
    expected = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert parse_crm_time("2026-11-20T10:00:00.000+0000") == expected
    assert parse_crm_time("2026-11-20T10:00:00Z") == expected
    assert parse_crm_time(str(int(expected.timestamp() * 1000))) == expected


def test_a_key_written_twice_is_an_error_with_its_line_not_the_later_value(
        tmp_path: Path) -> None:
    # Plain YAML lets the later key win silently: a second database_url pasted at the end of
    # the file would move the ledger to another database without a word.
    path = tmp_path / "leadgate.yaml"
    path.write_text("database_url: sqlite:///ledger.db\nsources:\n  crm:\n    kind: hubspot\n"
                    "    connection:\n      token: {env: X}\n"
                    "database_url: sqlite:///elsewhere.db\n")
    with pytest.raises(LeadgateError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:7: database_url: duplicate key 'database_url'")
    nested = path.read_text().replace("database_url: sqlite:///elsewhere.db\n", "") \
        .replace("      token: {env: X}\n", "      token: {env: X}\n      token: {env: Y}\n")
    path.write_text(nested)
    with pytest.raises(LeadgateError, match=r"leadgate.yaml:7: sources.crm.connection.token: "
                                            r"duplicate key"):
        load_config(path)


def test_each_problem_of_the_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "leadgate.yaml"
    path.write_text("sources:\n  crm:\n    kind: hubspot\n    connection:\n"
                    "      token: {env: X}\n    write_batch_sise: 50\n"
                    "  sf:\n    kind: salesforce\n    connection:\n      auth: password\n")
    with pytest.raises(LeadgateError) as err:
        load_config(path)
    text = str(err.value)
    assert "sources.crm.write_batch_sise (line 6): unknown key" in text
    # a block mapping is placed at its key's line, not at its first child's
    assert "sources.sf.connection (line 9): auth password needs username" in text
    assert "(fix: (fix:" not in text and text.count("(fix:") == 1


def test_an_empty_or_unreadable_file_is_one_line_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "leadgate.yaml"
    path.write_text("")
    with pytest.raises(LeadgateError, match="must be a YAML mapping"):
        load_config(path)
    path.write_text("sources:\n  crm:\n    kind: hubspot\n")  # a key missing from a mapping
    with pytest.raises(LeadgateError, match=r"sources.crm.connection \(line 2\): required key "
                                            r"is missing"):
        load_config(path)
    path.write_bytes(b"sources: \xff\n")
    with pytest.raises(LeadgateError, match="not UTF-8"):
        load_config(path)


SF_PASSWORD = {"auth": "password", "username": "u@example.test", "client_id": "cid",
               "client_secret": {"env": "LG_T_SF_SECRET"}, "password": {"env": "LG_T_SF_PW"}}


@pytest.mark.parametrize(("kind", "key", "connection"), [
    ("hubspot", "base_url", {"token": {"env": "X"}}),
    ("salesforce", "login_url", SF_PASSWORD)])
def test_plain_http_to_a_remote_crm_is_refused_naming_the_key_and_the_fix(
        tmp_path: Path, kind: str, key: str, connection: dict[str, object]) -> None:
    # the HubSpot token and the Salesforce client secret and password would cross the network
    # unencrypted; the URL itself is not echoed (a pasted one may carry a key)
    for url in ("http://crm.example.test/?k=s3cr3tXYZ", "HTTP://10.0.0.8:8080",
                "http://localhost.example.test"):
        data = {"sources": {"crm": {"kind": kind, "connection": {**connection, key: url}}}}
        with pytest.raises(LeadgateError) as err:
            parse_config(data)
        text = str(err.value)
        assert f"sources.crm.connection.{key}: plain http:// to a host that is not loopback " \
            "would send the CRM credentials unencrypted; fix: use https://" in text, text
        assert "s3cr3tXYZ" not in text
    data = {"sources": {"crm": {"kind": kind, "connection": {**connection, key: "crm.test"}}}}
    with pytest.raises(LeadgateError, match=rf"connection.{key}: not an https:// URL with a host"):
        parse_config(data)
    # ...and a file names its line
    path = tmp_path / "leadgate.yaml"
    path.write_text(f"sources:\n  crm:\n    kind: {kind}\n    connection:\n"
                    f"      {key}: http://crm.example.test\n      token: {{env: X}}\n")
    if kind == "salesforce":
        path.write_text(path.read_text().replace("      token: {env: X}\n", ""))
    with pytest.raises(LeadgateError, match=rf"sources.crm.connection.{key} \(line 5\): plain"):
        load_config(path)


@pytest.mark.parametrize("url", ["https://crm.example.test", "http://127.0.0.1:8443",
                                 "http://127.8.9.10", "http://[::1]:9000/", "http://localhost:1",
                                 "http://LOCALHOST"])
def test_https_anywhere_and_plain_http_to_loopback_are_accepted(url: str) -> None:
    # the sandbox CRM the tests and `leadgate demo` run on serves plain http on 127.0.0.1
    hubspot = {"kind": "hubspot", "connection": {"base_url": url, "token": {"env": "X"}}}
    salesforce = {"kind": "salesforce", "connection": {**SF_PASSWORD, "login_url": url}}
    config = parse_config({"sources": {"hs": hubspot, "sf": salesforce}})
    assert config.sources["hs"].connection.base_url == url  # type: ignore[union-attr]
    assert config.sources["sf"].connection.login_url == url  # type: ignore[union-attr]


def test_a_database_password_is_refused_in_the_config_file(tmp_path: Path) -> None:
    """Like every other secret: the file is often readable by all and kept in git."""
    import subprocess
    import sys

    from connectors.config import load_config

    base = "sources:\n  crm:\n    kind: hubspot\n    review_owner_id: '1'\n" \
           "    connection: {token: {env: HS_TOKEN}}\n"
    path = tmp_path / "leadgate.yaml"
    path.write_text("database_url: postgresql+psycopg://lg:Sup3rS3cret@db.internal/lg\n" + base)
    with pytest.raises(LeadgateError) as refused:
        load_config(path)
    text = str(refused.value)
    assert "database_url" in text and "LEADGATE_DATABASE_URL" in text
    assert "Sup3rS3cret" not in text
    # the audit commands read database_url themselves: refused alike, in one line
    done = subprocess.run([sys.executable, "-m", "sync.cli", "audit", "verify", "--config",
                           str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "database_url" in done.stderr, done.stderr
    assert "Sup3rS3cret" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    path.write_text("database_url: postgresql+psycopg://lg@db.internal/lg\n" + base)
    assert load_config(path).database_url == "postgresql+psycopg://lg@db.internal/lg"
