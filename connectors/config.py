"""leadgate.yaml: database, policy and CRM sources, validated with pydantic.

Secrets are never written in the file: a secret setting names an environment variable
(`{env: NAME}`) or a file (`{file: PATH}`) and is read only when a connection is opened.
Every error names the key (`sources.crm.connection.token`) and how to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from routing_core.errors import LeadgateError
from routing_core.policy.source import Located, SourceError, read_file
from routing_core.urls import LOOPBACK_ONLY, is_cleartext_remote, is_http_url

# Where a secret comes from; the value itself never appears in the config, a log or a result.


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    env: str | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(
                "secrets may not be written in leadgate.yaml; "
                "fix: write {env: VARIABLE_NAME} or {file: /path/to/secret}"
            )
        return data

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: or file:")
        return self

    def resolve(self, key: str) -> SecretStr:
        """Read the secret; `key` is the config key, used in errors (the value never is)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise LeadgateError(
                    f"environment variable {self.env} is not set",
                    where=key,
                    fix=f"export {self.env}=... before running leadgate, or use {{file: PATH}}",
                )
            return SecretStr(value)
        assert self.file is not None
        try:
            value = self.file.read_text().strip()
        except OSError as exc:
            raise LeadgateError(
                f"cannot read secret file {self.file} ({exc.strerror})",
                where=key,
                fix="create the file (readable only by leadgate's user) or point file: at it",
            ) from exc
        if not value:
            raise LeadgateError(f"secret file {self.file} is empty", where=key,
                                fix="put the secret in the file")
        return SecretStr(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _crm_url(url: str) -> str:
    """A CRM URL credentials are sent to: https, or http only to loopback (the sandbox CRM).
    The URL is not echoed: a pasted one may carry a user name or a key in its query."""
    if not is_http_url(url):
        raise ValueError("not an https:// URL with a host; fix: write the full URL, "
                         "starting https://")
    if is_cleartext_remote(url):
        raise ValueError("plain http:// to a host that is not loopback would send the CRM "
                         f"credentials unencrypted; fix: {LOOPBACK_ONLY}")
    return url


# ---------------------------------------------------------------- field mapping

#: parse_lead's raw names a mapping may feed (dotted for nested values).
LEAD_PATHS: frozenset[str] = frozenset({
    "id", "first_name", "last_name", "email", "phone", "company", "kind", "jurisdiction",
    "country", "subdivision", "state", "postcode", "customer_type", "product",
    "investable_assets.amount", "investable_assets.currency", "first_contact_at", "stage",
    "channel", "timezone",
})
LEAD_PATH_PREFIXES = ("assessments.", "consent.", "attributes.")


class FieldMap(_Strict):
    """One lead value: which CRM field feeds it and how its values translate.

    `values` maps CRM values (picklist labels, country spellings) to leadgate's; a value not in
    the map is a problem of the record unless `passthrough` is true (then it goes to parse_lead
    unchanged, which validates it). `type` coerces HubSpot's string properties.
    """

    field: str = Field(min_length=1)
    values: dict[str, Any] | None = None
    passthrough: bool = False
    type: Literal["string", "boolean", "number", "datetime"] = "string"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"field": data} if isinstance(data, str) else data


def _check_paths(mapping: dict[str, FieldMap]) -> dict[str, FieldMap]:
    for path in mapping:
        if path not in LEAD_PATHS and not path.startswith(LEAD_PATH_PREFIXES):
            raise ValueError(
                f"{path!r} is not a lead field; use one of {sorted(LEAD_PATHS)} or "
                "assessments.<name>, consent.<channel>, attributes.<name>"
            )
    if "id" not in mapping:
        raise ValueError("the mapping must name the CRM field for 'id'")
    return mapping


class RetrySettings(_Strict):
    """Backoff for transient failures (429, 5xx, timeouts, dropped connections)."""

    attempts: int = Field(6, ge=1, le=20)
    initial_wait: float = Field(0.5, ge=0)
    max_wait: float = Field(30.0, ge=0)
    #: the longest Retry-After / rate-limit interval honoured before giving up on the call
    retry_after_cap: float = Field(120.0, ge=0)
    timeout_seconds: float = Field(60.0, gt=0)


class Limits(_Strict):
    #: HTTP calls one run may make (retries included); the run stops cleanly at the budget
    api_budget: int = Field(10_000, ge=1)
    #: stop when the org's remaining daily API allowance falls to this share of its total
    org_reserve_percent: float = Field(10.0, ge=0, le=100)


class _SourceBase(_Strict):
    kind: str
    mapping: Annotated[dict[str, FieldMap], Field(default_factory=dict)]
    limits: Limits = Limits()
    retry: RetrySettings = RetrySettings()
    #: re-read records changed up to this long before the stored cursor (clock skew, late commits)
    overlap_seconds: int = Field(60, ge=0)
    #: re-read owners just before writing and report a person's change as a conflict
    conflict_check: bool = True

    @field_validator("mapping")
    @classmethod
    def _paths(cls, value: dict[str, FieldMap]) -> dict[str, FieldMap]:
        return _check_paths(value) if value else value


# ---------------------------------------------------------------- Salesforce

class SalesforceConnection(_Strict):
    """How to reach and authenticate to a Salesforce org.

    auth: `jwt` (connected app + private key: username, client_id, private_key),
    `client_credentials` (client_id, client_secret), `password` (username, password,
    security_token, client_id, client_secret; OAuth username-password flow).
    """

    login_url: str = "https://login.salesforce.com"
    api_version: str = "59.0"
    auth: Literal["jwt", "client_credentials", "password"] = "jwt"
    username: str | None = None
    client_id: str | SecretRef | None = None
    client_secret: SecretRef | None = None
    password: SecretRef | None = None
    security_token: SecretRef | None = None
    private_key: SecretRef | None = None
    #: the JWT audience (default: https://login.salesforce.com, or test. for sandbox orgs)
    jwt_audience: str | None = None
    #: a CA bundle that must be trusted for this org (wins over REQUESTS_CA_BUNDLE)
    ca_file: Path | None = None

    _login_url = field_validator("login_url")(_crm_url)

    @model_validator(mode="after")
    def _auth_complete(self) -> SalesforceConnection:
        needs = {
            "jwt": ("username", "client_id", "private_key"),
            "client_credentials": ("client_id", "client_secret"),
            "password": ("username", "password", "client_id", "client_secret"),
        }[self.auth]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"auth {self.auth} needs {', '.join(missing)}")
        if self.api_version.startswith("v"):
            raise ValueError("api_version is written without 'v', e.g. \"59.0\"")
        return self


class SalesforceIntake(_Strict):
    #: leads owned by this queue (Name or DeveloperName) are intake...
    owner_queue: str = "Lead Intake"
    #: ...while leadgate's status field is empty
    unstamped_field: str = "LeadGate_Status__c"


class SalesforceWriteback(_Strict):
    status: str = "LeadGate_Status__c"
    decision_id: str = "LeadGate_Decision_Id__c"
    reason: str = "LeadGate_Reason__c"
    policy_version: str = "LeadGate_Policy_Version__c"
    outreach: str = "LeadGate_Outreach__c"
    not_before: str = "LeadGate_Not_Before__c"


class SalesforceSource(_SourceBase):
    kind: Literal["salesforce"]
    connection: SalesforceConnection
    object: str = Field("Lead", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    intake: SalesforceIntake = SalesforceIntake()
    #: the Compliance Review queue (DeveloperName or Name) that refusals are assigned to
    review_queue: str = "Compliance_Review"
    writeback: SalesforceWriteback = SalesforceWriteback()
    query_page_size: int = Field(2000, ge=200, le=2000)
    write_batch_size: int = Field(200, ge=1, le=200)


# ---------------------------------------------------------------- HubSpot

class HubSpotConnection(_Strict):
    base_url: str = "https://api.hubapi.com"
    token: SecretRef
    ca_file: Path | None = None

    _base_url = field_validator("base_url")(_crm_url)


class HubSpotIntake(_Strict):
    lifecyclestage: str = "lead"
    unstamped_property: str = "leadgate_status"


class HubSpotWriteback(_Strict):
    status: str = "leadgate_status"
    decision_id: str = "leadgate_decision_id"
    reason: str = "leadgate_reason"
    policy_version: str = "leadgate_policy_version"
    outreach: str = "leadgate_outreach"
    not_before: str = "leadgate_not_before"
    #: the contact's last-modified time when leadgate read it to decide (HubSpot's clock): a
    #: form submission after it is the contact enquiring again
    read_at: str = "leadgate_read_at"
    group: str = "leadgate"


class HubSpotSource(_SourceBase):
    kind: Literal["hubspot"]
    connection: HubSpotConnection
    intake: HubSpotIntake = HubSpotIntake()
    #: the owner id refusals are assigned to (the compliance review owner)
    review_owner_id: str = "90001"
    writeback: HubSpotWriteback = HubSpotWriteback()
    search_page_size: int = Field(200, ge=10, le=200)
    #: search has its own per-second limit (5 for private apps) and no rate-limit headers
    search_per_second: float = Field(4.0, gt=0)
    write_batch_size: int = Field(100, ge=1, le=100)
    #: the search API's result cap; windows are re-anchored before reaching it
    search_cap: int = Field(10_000, ge=100)


SourceConfig = Annotated[SalesforceSource | HubSpotSource, Field(discriminator="kind")]


# A database password in leadgate.yaml would sit in a file that is often readable by every
# user and kept in version control: refused by the config (Config) and by the audit commands,
# which read database_url themselves, in these words.
DATABASE_PASSWORD_REFUSED = "a database password may not be written in leadgate.yaml"
DATABASE_PASSWORD_FIX = ("set LEADGATE_DATABASE_URL in the job's environment (from your secret "
                         "store) and leave database_url out, or give it without the password "
                         "and let libpq read ~/.pgpass or PGPASSWORD")


def has_password(url: str) -> bool:
    import sqlalchemy as sa

    try:
        return bool(sa.make_url(url).password)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported where it is opened
        return False


def _no_password(url: str | None) -> str | None:
    if url is not None and has_password(url):
        raise ValueError(f"{DATABASE_PASSWORD_REFUSED}; fix: {DATABASE_PASSWORD_FIX}")
    return url


class Config(_Strict):
    database_url: str | None = None
    policy: Path = Path("policy")
    sources: dict[str, SourceConfig] = Field(min_length=1)
    #: where the ledger's Ed25519 signing key lives
    signing_key: Path = Path("leadgate-signing.key")
    #: the officers' token hashes (`leadgate review add-officer`); fixed here, never per call
    officer_keys: Path = Path("leadgate-officers.json")

    _database_url = field_validator("database_url")(_no_password)

    @model_validator(mode="after")
    def _defaults(self) -> Config:
        from connectors.mapping import default_mapping

        for source in self.sources.values():
            if not source.mapping:
                object.__setattr__(source, "mapping", default_mapping(source.kind))
        return self

    def source(self, name: str) -> SalesforceSource | HubSpotSource:
        try:
            return self.sources[name]
        except KeyError:
            raise LeadgateError(
                f"no source named {name!r}", where="sources",
                fix=f"use one of {', '.join(sorted(self.sources))} or add it to leadgate.yaml",
            ) from None

    def source_of_kind(self, kind: str) -> tuple[str, SalesforceSource | HubSpotSource]:
        """The source called `kind`, else the only source of that kind."""
        if kind in self.sources:
            return kind, self.sources[kind]
        found = [(n, s) for n, s in self.sources.items() if s.kind == kind]
        if len(found) != 1:
            raise LeadgateError(
                f"{len(found)} sources of kind {kind}", where="sources",
                fix="name the source explicitly with --source",
            )
        return found[0]


def _key(loc: tuple[int | str, ...]) -> str:
    items = list(loc)
    if len(items) >= 3 and items[0] == "sources" and items[2] in ("salesforce", "hubspot"):
        del items[2]  # pydantic's discriminator tag, not a key of the file
    parts: list[str] = []
    for item in items:
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
        elif not str(item).startswith("function-"):
            parts.append(str(item))
    return ".".join(parts)


def parse_config(data: Any, *, origin: str = "leadgate.yaml",
                 lines: Located | None = None) -> Config:
    """Validate the file's data; `lines` (from read_config_file) puts a line on each problem."""
    if not isinstance(data, dict):
        raise LeadgateError("must be a YAML mapping", where=origin,
                            fix="start from `leadgate init`")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            key = _key(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key (remove it or check its spelling)"
            elif err["type"] == "missing":
                message = "required key is missing (add it; see `leadgate init`)"
            if lines is not None:
                line = lines.locate(key)[1]
                key = f"{key} (line {line})" if line and key else key
            problems.append(f"{key}: {message}" if key else message)
        raise LeadgateError("; ".join(problems), where=origin,
                            fix="`leadgate init --print` shows a commented template") from None


def read_config_file(path: Path) -> Located:
    """The YAML of leadgate.yaml with the line of every key, read by the policy's own reader:
    a key written twice is an error (plain YAML would let the later one win silently)."""
    try:
        data, where = read_file(path)
    except SourceError as error:
        if error.message.startswith("cannot read"):
            raise LeadgateError(error.message, where=str(path),
                                fix="run `leadgate init` to create it, or pass --config") from None
        place = f"{path}:{error.line}" if error.line else str(path)
        message = f"{error.path}: {error.message}" if error.path else error.message
        raise LeadgateError(message, where=place,
                            fix="correct the YAML at that line") from None
    return Located(data=data, where=where, files=[str(path)])


def load_config(path: str | Path) -> Config:
    """Read and validate leadgate.yaml. Raises LeadgateError naming the key and the fix."""
    path = Path(path)
    located = read_config_file(path)
    data = located.data if located.where else None  # an empty file is not a mapping
    config = parse_config(data, origin=str(path), lines=located)
    # relative paths in the file are relative to the file, not to the working directory
    base = path.parent
    updates: dict[str, Any] = {}
    if not config.policy.is_absolute():
        updates["policy"] = base / config.policy
    for key in ("signing_key", "officer_keys"):
        if not getattr(config, key).is_absolute():
            updates[key] = base / getattr(config, key)
    return config.model_copy(update=updates)
