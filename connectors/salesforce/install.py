"""`leadgate install salesforce` and `leadgate connect salesforce`.

Install creates leadgate's custom fields on Lead through the Tooling API (CustomField) and the
Compliance Review queue (Group + QueueSobject), skipping what exists, so that a second run changes
nothing. `metadata_package()` is the same as an sfdx source package for orgs that deploy metadata
through change control instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from connectors.base import CheckReport, InstallReport
from connectors.calls import CallFailed
from connectors.mapping import value_map_problems
from routing_core.errors import LeadgateError

if TYPE_CHECKING:
    from connectors.salesforce.adapter import SalesforceConnector


def field_specs(conn: SalesforceConnector) -> list[dict[str, Any]]:
    """leadgate's fields: API name, label, Tooling metadata."""
    wb = conn.config.writeback
    text = {"type": "Text", "length": 255}
    return [
        {"name": wb.status, "label": "LeadGate Status", "meta": {"type": "Text", "length": 40}},
        {"name": wb.decision_id, "label": "LeadGate Decision Id",
         "meta": {"type": "Text", "length": 40, "externalId": True}},
        {"name": wb.reason, "label": "LeadGate Reason", "meta": text},
        {"name": wb.policy_version, "label": "LeadGate Policy Version",
         "meta": {"type": "Text", "length": 80}},
        {"name": wb.outreach, "label": "LeadGate Outreach",
         "meta": {"type": "LongTextArea", "length": 32768, "visibleLines": 3}},
        {"name": wb.not_before, "label": "LeadGate Not Before", "meta": {"type": "DateTime"}},
    ]


REVIEW_QUEUE_LABEL = "Compliance Review"


def _describe(conn: SalesforceConnector) -> dict[str, Any]:
    sobject = conn.config.object
    return conn.rest(f"describe {sobject}", f"sobjects/{sobject}/describe/")  # type: ignore[no-any-return]


def install(conn: SalesforceConnector, *, dry_run: bool) -> InstallReport:
    created: list[str] = []
    existing: list[str] = []
    sobject = conn.config.object
    have = {f["name"] for f in _describe(conn).get("fields", [])}
    for spec in field_specs(conn):
        label = f"field {sobject}.{spec['name']}"
        if spec["name"] in have:
            existing.append(label)
            continue
        created.append(label)
        if not dry_run:
            metadata = {"label": spec["label"], **spec["meta"]}
            conn.rest(f"create {label}", "tooling/sobjects/CustomField/", method="POST",
                      json={"FullName": f"{sobject}.{spec['name']}", "Metadata": metadata})
    queue = conn.config.review_queue
    label = f"queue {queue} (for {sobject})"
    if queue in conn.find_queues([queue]):
        existing.append(label)
    else:
        created.append(label)
        if not dry_run:
            answer = conn.rest(f"create {label}", "sobjects/Group/", method="POST",
                               json={"Name": REVIEW_QUEUE_LABEL if queue == "Compliance_Review"
                                     else queue, "DeveloperName": queue, "Type": "Queue"})
            conn.rest(f"let {label} own {sobject} records", "sobjects/QueueSobject/",
                      method="POST", json={"QueueId": answer["id"], "SobjectType": sobject})
    return InstallReport(created=created, existing=existing, dry_run=dry_run)


def check(conn: SalesforceConnector) -> CheckReport:
    """Credentials, API version, mapped fields and picklist values, leadgate's fields, queues."""
    facts: list[str] = []
    problems: list[str] = []
    where = conn.where
    try:
        sf = conn.sf
    except LeadgateError as exc:
        return CheckReport(False, [], [str(exc)])
    facts.append(f"logged in to {sf.sf_instance} ({conn.config.connection.auth})")
    version = conn.config.connection.api_version
    try:
        versions = conn.gate.call("list API versions", lambda: sf.session.get(
            f"https://{sf.sf_instance}/services/data/", headers=sf.headers,
            timeout=conn.timeout))
        listed = [v.get("version") for v in versions.json()] if versions.ok else []
        if listed and version not in listed:
            problems.append(f"{where}.connection.api_version: {version} is not offered by this "
                            f"org (newest: {listed[-1]}) (fix: set api_version to one of "
                            f"{', '.join(listed[-3:])})")
        elif listed:
            facts.append(f"API version {version} available (newest {listed[-1]})")
    except (CallFailed, ValueError):
        facts.append("could not list API versions; the describe call below tests the version")
    if conn.composite:
        facts.append("write-back sends up to 5 sObject Collections of 200 (and the conflict "
                     "check up to 5 owner re-reads of 400) per Composite call")
    else:
        facts.append(f"API version {version} is below 43.0, where Composite can carry sObject "
                     "Collections: write-back makes one call per collection of 200 and per "
                     "owner re-read of 400 (set connection.api_version to 43.0 or later for up "
                     "to 5 per call)")
    try:
        limits = conn.read_limits()
        daily = limits.get("DailyApiRequests", {})
        if daily:
            facts.append(f"daily API requests: {daily.get('Remaining')} of {daily.get('Max')} "
                         "left")
    except CallFailed as exc:
        problems.append(f"cannot read /limits: {exc.message}")
    try:
        describe = _describe(conn)
    except CallFailed as exc:
        problems.append(f"{exc} (fix: check object: and api_version)")
        return CheckReport(False, facts, problems)
    by_name = {f["name"]: f for f in describe.get("fields", [])}
    for path, spec in conn.config.mapping.items():
        key = f"{where}.mapping.{path}"
        field = by_name.get(spec.field)
        if field is None:
            problems.append(f"{key}: field {spec.field} does not exist on {conn.config.object} "
                            "(fix: correct the field name)")
            continue
        if spec.values is None or field.get("type") not in ("picklist", "multipicklist"):
            continue
        offered = {p["value"] for p in field.get("picklistValues", []) if p.get("active", True)}
        problems += value_map_problems(key, spec, offered, value_word="picklist value",
                                       list_word="a value of the picklist")
    missing = [s["name"] for s in field_specs(conn) if s["name"] not in by_name]
    if missing:
        problems.append(f"leadgate's fields are missing: {', '.join(missing)} "
                        "(fix: run `leadgate install salesforce`)")
    queues = conn.find_queues([conn.config.intake.owner_queue, conn.config.review_queue])
    for key, name in (("intake.owner_queue", conn.config.intake.owner_queue),
                      ("review_queue", conn.config.review_queue)):
        if name not in queues:
            problems.append(f"{where}.{key}: queue {name!r} not found (fix: correct the name"
                            + (", or run `leadgate install salesforce`)" if key == "review_queue"
                               else ")"))
    facts.append(f"{len(conn.config.mapping)} mapped fields checked against "
                 f"{conn.config.object} describe")
    return CheckReport(not problems, facts, problems)


def metadata_package(conn: SalesforceConnector) -> dict[str, str]:
    """An sfdx source-format package (path -> content) with leadgate's fields and the queue."""
    sobject = conn.config.object
    version = conn.config.connection.api_version
    files: dict[str, str] = {}
    base = "force-app/main/default"
    for spec in field_specs(conn):
        meta = spec["meta"]
        lines = [f"    <fullName>{escape(spec['name'])}</fullName>",
                 f"    <label>{escape(spec['label'])}</label>",
                 f"    <type>{meta['type']}</type>"]
        if "length" in meta:
            lines.append(f"    <length>{meta['length']}</length>")
        if "visibleLines" in meta:
            lines.append(f"    <visibleLines>{meta['visibleLines']}</visibleLines>")
        if meta.get("externalId"):
            lines.append("    <externalId>true</externalId>")
        lines.append("    <required>false</required>")
        files[f"{base}/objects/{sobject}/fields/{spec['name']}.field-meta.xml"] = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">\n'
            + "\n".join(lines) + "\n</CustomField>\n")
    queue = conn.config.review_queue
    files[f"{base}/queues/{queue}.queue-meta.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Queue xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        f"    <name>{escape(REVIEW_QUEUE_LABEL if queue == 'Compliance_Review' else queue)}"
        "</name>\n"
        f"    <queueSobject>\n        <sobjectType>{sobject}</sobjectType>\n"
        "    </queueSobject>\n</Queue>\n")
    members = "\n".join(f"        <members>{sobject}.{s['name']}</members>"
                        for s in field_specs(conn))
    files["manifest/package.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Package xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        f"    <types>\n{members}\n        <name>CustomField</name>\n    </types>\n"
        f"    <types>\n        <members>{queue}</members>\n        <name>Queue</name>\n"
        f"    </types>\n    <version>{version}</version>\n</Package>\n")
    files["sfdx-project.json"] = (
        '{\n  "packageDirectories": [{"path": "force-app", "default": true}],\n'
        f'  "sourceApiVersion": "{version}"\n}}\n')
    return files
