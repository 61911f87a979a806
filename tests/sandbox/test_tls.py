"""TLS trust both ways (crm-wire-notes "Both"): the sandbox CA must win over an environment
CA bundle for sandbox sessions, and production-style sessions must keep honouring it.

Docs: https://requests.readthedocs.io/en/latest/user/advanced/#ssl-cert-verification
(REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE; trust_env).
"""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest
import requests
from simple_salesforce import Salesforce

from connectors.sandbox import Sandbox


@pytest.fixture
def other_bundle(monkeypatch: pytest.MonkeyPatch) -> str:
    """An environment CA bundle that does not contain the sandbox CA (as on a bank laptop)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    return certifi.where()


def test_session_verify_alone_is_overridden_by_the_environment(sb: Sandbox,
                                                               other_bundle: str) -> None:
    s = requests.Session()
    s.verify = str(sb.ca_file)  # looks right, but REQUESTS_CA_BUNDLE wins for every request
    with pytest.raises(requests.exceptions.SSLError):
        s.get(f"{sb.salesforce_instance_url}/services/data/")


def test_trust_env_false_wins(sb: Sandbox, other_bundle: str) -> None:
    sf = Salesforce(instance_url=sb.salesforce_instance_url, session_id=sb.salesforce_session_id,
                    session=sb.requests_session())
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2500


def test_verify_per_request_wins(sb: Sandbox, other_bundle: str) -> None:
    s = requests.Session()  # trust_env stays on: proxies etc. still apply
    r = s.get(f"{sb.salesforce_instance_url}/services/data/", verify=str(sb.ca_file))
    assert r.status_code == 200


def test_production_session_still_honours_the_environment_bundle(
        sb: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The bank's bundle (here: public roots + the sandbox CA standing in for a corporate CA)
    bundle = tmp_path / "corporate-bundle.pem"
    bundle.write_text(Path(certifi.where()).read_text() + Path(sb.ca_file).read_text())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    s = requests.Session()  # what a production connection uses: no verify override
    assert s.get(f"{sb.salesforce_instance_url}/services/data/").status_code == 200
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with pytest.raises(requests.exceptions.SSLError):
        requests.Session().get(f"{sb.salesforce_instance_url}/services/data/")


def test_hubspot_over_tls_with_ssl_ca_cert(other_bundle: str) -> None:
    with Sandbox(seed=1, leads=5, hubspot_tls=True) as box:
        assert box.hubspot_base_url.startswith("https://")
        page = box.hubspot_client().crm.contacts.search_api.do_search(
            public_object_search_request={"limit": 2})
        assert page.total == 5
