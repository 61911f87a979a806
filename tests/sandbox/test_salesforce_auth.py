"""Login flows, session errors and API usage, through simple-salesforce.

Docs: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
(JWT bearer: RS256 assertion, iss/sub/aud/exp), https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
(401 INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED; errors are a list of {message, errorCode}),
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
(Sforce-Limit-Info: api-usage=N/M), https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)
from simple_salesforce.util import Usage

from connectors.sandbox import Sandbox


def test_401_is_a_list_with_invalid_session_id(sb: Sandbox) -> None:
    r = sb.requests_session().get(f"{sb.salesforce_instance_url}/services/data/v59.0/limits/",
                                  headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid",
                         "errorCode": "INVALID_SESSION_ID"}]
    assert r.headers["Sforce-Limit-Info"].startswith("api-usage=")
    sf = Salesforce(instance_url=sb.salesforce_instance_url, session_id="nope",
                    session=sb.requests_session())
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead")


def _login_kwargs(sb: Sandbox) -> dict[str, Any]:
    c = sb.salesforce_credentials
    return {"domain": c["domain"], "session": sb.requests_session()}


def test_password_grant_with_consumer_key_and_refresh_after_expiry(sb: Sandbox) -> None:
    c = sb.salesforce_credentials
    sf = Salesforce(username=c["username"], password=c["password"], consumer_key=c["client_id"],
                    consumer_secret=c["client_secret"], **_login_kwargs(sb))
    assert sf.sf_instance == sb.salesforce_instance_url.removeprefix("https://")
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2500
    sb.expire_sessions()
    # simple-salesforce reads json()[0]['errorCode'] on the 401 and logs in again
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2500
    assert sb.counts()["salesforce.query"]["status.401"] == 1


def test_soap_login_with_security_token(sb: Sandbox) -> None:
    c = sb.salesforce_credentials
    sf = Salesforce(username=c["username"], password=c["password"],
                    security_token=c["security_token"], **_login_kwargs(sb))
    assert sf.limits()["DailyApiRequests"]["Max"] == 100_000
    with pytest.raises(SalesforceAuthenticationFailed) as e:
        Salesforce(username=c["username"], password="wrong", security_token="x",
                   **_login_kwargs(sb))
    assert e.value.code == "INVALID_LOGIN"


def test_client_credentials(sb: Sandbox) -> None:
    c = sb.salesforce_credentials
    sf = Salesforce(consumer_key=c["client_id"], consumer_secret=c["client_secret"],
                    **_login_kwargs(sb))
    assert sf.query("SELECT Id FROM Organization")["totalSize"] == 1
    with pytest.raises(SalesforceAuthenticationFailed) as e:
        Salesforce(consumer_key=c["client_id"], consumer_secret="bad", **_login_kwargs(sb))
    assert e.value.code == "invalid_client"


def test_jwt_bearer_verifies_the_signature(sb: Sandbox, tmp_path: Any) -> None:
    c = sb.salesforce_credentials
    sf = Salesforce(username=c["username"], consumer_key=c["client_id"],
                    privatekey_file=c["private_key_file"], **_login_kwargs(sb))
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2500
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    with pytest.raises(SalesforceAuthenticationFailed) as e:
        Salesforce(username=c["username"], consumer_key=c["client_id"], privatekey=pem.decode(),
                   **_login_kwargs(sb))
    assert (e.value.code, e.value.auth_message) == ("invalid_grant", "invalid assertion")
    # once its certificate is registered (as uploaded to the connected app), it is accepted
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leadgate")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(other.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(other, hashes.SHA256()))
    sb.register_jwt_certificate(cert.public_bytes(serialization.Encoding.PEM))
    ok = Salesforce(username=c["username"], consumer_key=c["client_id"],
                    privatekey=pem.decode(), **_login_kwargs(sb))
    assert ok.query("SELECT COUNT() FROM Lead")["totalSize"] == 2500
    # an expired assertion, posted directly to the token URL
    key = open(c["private_key_file"]).read()  # noqa: SIM115
    token = jwt.encode({"iss": c["client_id"], "sub": c["username"],
                        "aud": "https://login.salesforce.com", "exp": 1000}, key,
                       algorithm="RS256")
    r = sb.requests_session().post(c["token_url"], data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": token})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_limits_and_usage_header(sb: Sandbox, sf: Any) -> None:
    sf.query("SELECT Id FROM Lead LIMIT 1")
    assert sf.api_usage["api-usage"] == Usage(used=1, total=100_000)
    lim = sf.limits()
    assert lim["DailyApiRequests"] == {"Max": 100_000, "Remaining": 100_000 - 2}


def test_request_limit_exceeded_is_403() -> None:
    with Sandbox(seed=1, leads=10, api_limit=2) as box:
        sf = box.salesforce_client()
        sf.query("SELECT Id FROM Lead")
        sf.query("SELECT Id FROM Lead")
        with pytest.raises(SalesforceRefusedRequest) as e:
            sf.query("SELECT Id FROM Lead")
        assert e.value.content == [{"message": "TotalRequests Limit exceeded.",
                                    "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_versions_resource(sb: Sandbox) -> None:
    r = requests.get(f"{sb.salesforce_instance_url}/services/data/", verify=str(sb.ca_file))
    assert {"label", "url", "version"} <= set(r.json()[0])


def test_unknown_resources_and_grants(sb: Sandbox) -> None:
    s = sb.requests_session()
    auth = {"Authorization": f"Bearer {sb.salesforce_session_id}"}
    r = s.get(f"{sb.salesforce_instance_url}/services/data/v59.0/sobjects/Lead/00Q5g0000099999AAA",
              headers=auth)
    assert r.status_code == 404 and r.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    r = s.post(sb.salesforce_credentials["token_url"], data={"grant_type": "authorization_code"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = requests.get(f"{sb.hubspot_base_url}/crm/v3/objects/deals/1",
                     headers={"Authorization": f"Bearer {sb.hubspot_token}"})
    assert r.status_code == 404 and r.json()["status"] == "error"
    assert sb.counts()["hubspot.not_found"]["status.404"] == 1
