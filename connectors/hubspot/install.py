"""`leadgate install hubspot` and `leadgate connect hubspot`: the property group "leadgate" and
leadgate's contact properties, created only where missing (a second run changes nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.base import CheckReport, InstallReport
from connectors.calls import CallFailed
from connectors.mapping import value_map_problems
from routing_core.errors import LeadgateError

if TYPE_CHECKING:
    from connectors.hubspot.adapter import HubSpotConnector


def property_specs(conn: HubSpotConnector) -> list[dict[str, Any]]:
    wb = conn.config.writeback
    text = {"type": "string", "fieldType": "text"}
    return [
        {"name": wb.status, "label": "LeadGate status", **text},
        {"name": wb.decision_id, "label": "LeadGate decision id", **text},
        {"name": wb.reason, "label": "LeadGate reason", **text},
        {"name": wb.policy_version, "label": "LeadGate policy version", **text},
        {"name": wb.outreach, "label": "LeadGate outreach", "type": "string",
         "fieldType": "textarea"},
        {"name": wb.not_before, "label": "LeadGate not before", "type": "datetime",
         "fieldType": "date"},
        {"name": wb.read_at, "label": "LeadGate read at", "type": "datetime",
         "fieldType": "date"},
    ]


def all_properties(conn: HubSpotConnector) -> dict[str, dict[str, Any]]:
    data, _ = conn.call("list contact properties", lambda: conn.api(
        "properties").get_all_with_http_info("contacts", _request_timeout=conn.timeout))
    return {p["name"]: p for p in (data.to_dict().get("results") or [])} if data else {}


def missing_properties(conn: HubSpotConnector, have: dict[str, Any] | None = None
                       ) -> list[str]:
    """leadgate's contact properties the portal lacks (`have`: its properties, if read)."""
    have = all_properties(conn) if have is None else have
    return [s["name"] for s in property_specs(conn) if s["name"] not in have]


def unknown_mapped(conn: HubSpotConnector, have: dict[str, Any]) -> list[tuple[str, str]]:
    """(mapping path, property) of each mapped property the portal does not have. A search
    answers such a property as empty, never as an error: a misspelt last name would be read as
    no name, and screened as none."""
    return [(path, spec.field) for path, spec in conn.config.mapping.items()
            if spec.field not in have]


def _group_exists(conn: HubSpotConnector, name: str) -> bool:
    try:
        conn.call("read property group", lambda: conn.api("groups").get_by_name_with_http_info(
            "contacts", name, _request_timeout=conn.timeout))
    except CallFailed as exc:
        if exc.status == 404:
            return False
        raise
    return True


def install(conn: HubSpotConnector, *, dry_run: bool) -> InstallReport:
    created: list[str] = []
    existing: list[str] = []
    group = conn.config.writeback.group
    if _group_exists(conn, group):
        existing.append(f"property group {group}")
    else:
        created.append(f"property group {group}")
        if not dry_run:
            conn.call("create property group", lambda: conn.api("groups").create_with_http_info(
                "contacts", {"name": group, "label": "LeadGate", "displayOrder": -1},
                _request_timeout=conn.timeout))
    have = all_properties(conn)
    for spec in property_specs(conn):
        label = f"contact property {spec['name']}"
        if spec["name"] in have:
            existing.append(label)
            continue
        created.append(label)
        if not dry_run:
            body = {**spec, "groupName": group}
            conn.call(f"create {label}", lambda body=body: conn.api(  # type: ignore[misc]
                "properties").create_with_http_info("contacts", body,
                                                    _request_timeout=conn.timeout))
    return InstallReport(created=created, existing=existing, dry_run=dry_run)


def check(conn: HubSpotConnector) -> CheckReport:
    facts: list[str] = ["HubSpot CRM API v3"]
    problems: list[str] = []
    where = conn.where
    try:
        owners = conn.list_owners()
    except LeadgateError as exc:
        return CheckReport(False, [], [str(exc)])
    facts.append(f"token accepted; {len(owners)} owners visible")
    if conn.config.review_owner_id not in owners:
        problems.append(f"{where}.review_owner_id: owner {conn.config.review_owner_id} not "
                        "found (fix: set it to the compliance review owner's id)")
    try:
        props = all_properties(conn)
    except CallFailed as exc:
        problems.append(str(exc))
        return CheckReport(False, facts, problems)
    problems += [f"{where}.mapping.{path}: contact property {name} does not exist "
                 "(fix: correct the property's internal name)"
                 for path, name in unknown_mapped(conn, props)]
    for path, spec in conn.config.mapping.items():
        key = f"{where}.mapping.{path}"
        prop = props.get(spec.field)
        if prop is None:
            continue
        options = {o["value"] for o in prop.get("options") or [] if not o.get("hidden")}
        if spec.values is None or prop.get("type") != "enumeration" or not options:
            continue
        problems += value_map_problems(key, spec, options, value_word="option",
                                       list_word="an option of")
    missing = missing_properties(conn, props)
    if missing:
        problems.append(f"leadgate's properties are missing: {', '.join(missing)} "
                        "(fix: run `leadgate install hubspot`)")
    facts.append(f"{len(conn.config.mapping)} mapped properties checked")
    return CheckReport(not problems, facts, problems)
