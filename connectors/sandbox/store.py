"""The sandbox's state: one Salesforce org and one HubSpot portal, in memory.

Optionally persisted to a JSON file (only what differs from the seeded generation is
written, so the file stays small however many leads there are).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .generator import Generator, default_currency, mix, mixes
from .reps import Rep
from .schema import (
    CUSTOM_FIELD_FIELDS,
    GROUP_FIELDS,
    HS_GROUPS,
    HS_PROPERTIES,
    LEAD_FIELDS,
    LEADGATE_HS_PROPERTIES,
    LEADGATE_SF_FIELDS,
    ORGANIZATION_FIELDS,
    QUEUE_SOBJECT_FIELDS,
    USER_FIELDS,
    HsProperty,
    SfField,
)
from .tables import LazyTable, RowTable
from .wire import now_ms, sf_id, sf_id_number

SPAN_MS = 90 * 86_400_000  # generated records were created over the 90 days before `anchor`
HS_ID_BASE = 100_001
DEFAULT_ANCHOR_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: reproducible timestamps
REVIEW_OWNER_ID = "90001"  # as in examples/policy and connectors.config's default
_HS_TYPE = {"string": "string", "number": "double", "datetime": "datetime", "date": "date",
            "enumeration": "picklist", "bool": "boolean"}


def hs_field(p: HsProperty) -> SfField:
    """A HubSpot property seen through the table's field interface."""
    return SfField(p.name, _HS_TYPE[p.type], p.label)


class Store:
    def __init__(self, *, seed: int, leads: int, contacts: int | None, reps: Sequence[Rep],
                 anchor_ms: int = DEFAULT_ANCHOR_MS, review_owner_id: str | None = None) -> None:
        self.review_owner_param = review_owner_id
        self.lock = threading.RLock()
        # The owner an active lead assignment rule gives every updated Lead, unless the update
        # says Sforce-Auto-Assign: FALSE (None: no active rule, the default)
        self.lead_assignment_rule: str | None = None
        self.seed = seed
        self.n_leads = leads
        self.n_contacts = leads if contacts is None else contacts
        self.anchor_ms = anchor_ms
        self.reps = list(reps)
        self._last_ms = anchor_ms
        self.changes: deque[dict[str, Any]] = deque(maxlen=100_000)
        self.origins: Counter[str] = Counter()
        self.owner_changes: list[tuple[str, str, str, str]] = []  # (crm, record id, old, new)
        self._emails: dict[str, int] | None = None
        self._build_salesforce()
        self._build_hubspot()

    # -- time
    def stamp(self, *, seconds: bool) -> int:
        """Now in ms, never earlier than any stamp already issued (Salesforce: whole seconds,
        so many writes share one SystemModstamp, as they do in a real org)."""
        with self.lock:
            t = now_ms()
            if seconds:
                t -= t % 1000
            t = max(t, self._last_ms)
            self._last_ms = t
            return t

    # -- Salesforce
    def _build_salesforce(self) -> None:
        self.org_id = sf_id("00D", 1)
        self.users = RowTable("User", USER_FIELDS)
        self.groups = RowTable("Group", GROUP_FIELDS)
        self.queue_sobjects = RowTable("QueueSobject", QUEUE_SOBJECT_FIELDS)
        self.organization = RowTable("Organization", ORGANIZATION_FIELDS)
        self.custom_fields = RowTable("CustomField", CUSTOM_FIELD_FIELDS)
        self.organization.add({"Id": self.org_id, "Name": "Northwind Financial Group (sandbox)",
                               "IsSandbox": True})
        self.integration_user_id = sf_id("005", 900)
        self.revops_user_id = sf_id("005", 901)
        self.inactive_user_id = sf_id("005", 902)
        for rep in self.reps:
            self._add_user(rep.salesforce_id, rep.name, rep.email, rep.active)
        self._add_user(self.integration_user_id, "LeadGate Integration",
                       "leadgate.integration@northwind.example", True)
        self._add_user(self.revops_user_id, "Rita Revops", "rita.revops@northwind.example", True)
        self._add_user(self.inactive_user_id, "Former Rep", "former.rep@northwind.example", False)
        self.intake_queue_id = sf_id("00G", 1)
        self.review_queue_id = sf_id("00G", 2)
        for n, (qid, name, dev) in enumerate(((self.intake_queue_id, "Lead Intake", "Lead_Intake"),
                                              (self.review_queue_id, "Compliance Review",
                                               "Compliance_Review"))):
            self.groups.add({"Id": qid, "Name": name, "DeveloperName": dev, "Type": "Queue",
                             "Email": None})
            self.queue_sobjects.add({"Id": sf_id("03g", n + 1), "QueueId": qid,
                                     "SobjectType": "Lead"})
        self.groups.add({"Id": sf_id("00G", 3), "Name": "All Sales", "DeveloperName": "All_Sales",
                         "Type": "Regular", "Email": None})

        n = self.n_leads
        gen = Generator(self.seed, "salesforce")
        self.sf_generator = gen
        start = self.anchor_ms - SPAN_MS
        seed = self.seed
        rep_ids = [r.salesforce_id for r in self.reps] or [self.integration_user_id]
        intake = self.intake_queue_id

        def created(i: int) -> int:
            t = start + (i * SPAN_MS) // max(n, 1)
            return t - t % 1000

        def cold(i: int) -> dict[str, Any]:
            p = gen.person(i)
            first_contact = created(i) - p.first_contact_offset_s * 1000
            return {
                "FirstName": p.first, "LastName": p.last, "Email": p.email, "Phone": p.phone,
                "Company": p.company, "Street": p.street, "City": p.city, "State": p.state,
                "PostalCode": p.postcode, "Country": p.country, "LeadSource": p.source,
                "CurrencyIsoCode": p.currency if p.currency is not None or "malformed:missing_currency" in p.tags
                else default_currency(p.country_code),
                "Customer_Type__c": p.customer_type, "Product_Interest__c": p.product,
                "Investable_Assets__c": p.assets, "Appropriateness__c": p.appropriateness,
                "Phone_Consent__c": p.phone_consent, "Email_Consent__c": p.email_consent,
                "First_Contact__c": first_contact - first_contact % 1000,
            }

        nn = max(n, 1)
        created_col = [t - t % 1000 for t in (start + (i * SPAN_MS) // nn for i in range(n))]
        h1 = mixes(seed, n, 1)
        n_reps = len(rep_ids)
        self.leads = LazyTable(
            "Lead", LEAD_FIELDS, n,
            hot={"CreatedDate": created_col, "LastModifiedDate": list(created_col),
                 "SystemModstamp": list(created_col),
                 "OwnerId": [intake if h % 100 < 85 else rep_ids[(h >> 8) % n_reps] for h in h1],
                 "Status": ["Open - Not Contacted" if h % 100 < 85 else "Working - Contacted"
                            for h in h1],
                 "IsConverted": [False] * n, "LeadGate_Status__c": [None] * n},
            cold=cold, id_of=lambda i: sf_id("00Q", i),
            index_of=lambda s: sf_id_number(s, "00Q"), id_field="Id",
            modstamp_field="SystemModstamp", base_ms=created,
            ms_to_index=lambda ms: ((ms - start) * max(n, 1)) // SPAN_MS - 1,
        )
        self.lead_extra_fields: dict[str, SfField] = {f.name: f for f in LEADGATE_SF_FIELDS}

    def _add_user(self, uid: str, name: str, email: str, active: bool) -> None:
        first, _, last = name.partition(" ")
        self.users.add({"Id": uid, "Username": email.replace("@", "@sandbox."), "Name": name,
                        "FirstName": first if last else None, "LastName": last or first,
                        "Email": email, "IsActive": active, "UserType": "Standard"})

    def owner_ok(self, owner_id: str) -> str | None:
        """None if a lead may be owned by this id; else Salesforce's errorCode."""
        user = self.users.find(owner_id)
        if user is not None:
            return None if user["IsActive"] else "INACTIVE_OWNER_OR_USER"
        if any(q["QueueId"][:15] == owner_id[:15] for q in self.queue_sobjects.rows):
            return None
        return "INVALID_CROSS_REFERENCE_KEY"

    def install_salesforce_field(self, field: SfField) -> str:
        """Make a custom field exist on Lead (what the Tooling API create does)."""
        with self.lock:
            self.leads.fields[field.name.lower()] = field
            fid = sf_id("00N", len(self.custom_fields.rows) + 1)
            self.custom_fields.add({"Id": fid, "DeveloperName": field.name[:-3],
                                    "TableEnumOrId": "Lead", "FullName": f"Lead.{field.name}"})
            return fid

    def install_leadgate_fields(self) -> None:
        """Create leadgate's own fields and properties, as `leadgate install` would."""
        with self.lock:
            for f in LEADGATE_SF_FIELDS:
                if f.name.lower() not in self.leads.fields:
                    self.install_salesforce_field(f)
            if "leadgate" not in self.hs_groups:
                self.hs_groups["leadgate"] = "LeadGate"
            for p in LEADGATE_HS_PROPERTIES:
                if p.name not in self.hs_properties:
                    self.add_hs_property(p)

    # -- HubSpot
    def _build_hubspot(self) -> None:
        n = self.n_contacts
        gen = Generator(self.seed, "hubspot")
        self.hs_generator = gen
        start = self.anchor_ms - SPAN_MS
        seed = self.seed
        owner_ids = [r.hubspot_id for r in self.reps]
        self.hs_properties: dict[str, HsProperty] = {p.name: p for p in HS_PROPERTIES}
        self.hs_property_created: dict[str, int] = {p.name: self.anchor_ms - SPAN_MS
                                                    for p in HS_PROPERTIES}
        self.hs_groups: dict[str, str] = dict(HS_GROUPS)
        self.owners: list[dict[str, Any]] = []
        for k, rep in enumerate(self.reps):
            self._add_owner(rep.hubspot_id, rep.name, rep.email, 9_000_001 + k)
        self.review_owner_id = self.review_owner_param or REVIEW_OWNER_ID
        self._add_owner(self.review_owner_id, "Compliance Review",
                        "compliance.review@northwind.example", 9_000_999)
        for owner, rep in zip(self.owners, self.reps, strict=False):
            owner["teams"] = [{"id": tid, "name": tname, "primary": n == 0}
                              for n, (tid, tname) in enumerate(rep.hubspot_teams)]
        stages = ("subscriber", "marketingqualifiedlead", "customer", "opportunity")

        def created(i: int) -> int:
            return start + (i * SPAN_MS) // max(n, 1)

        def cold(i: int) -> dict[str, Any]:
            p = gen.person(i)
            return {
                "firstname": p.first, "lastname": p.last, "email": p.email, "phone": p.phone,
                "company": p.company, "country": p.country, "state": p.state, "zip": p.postcode,
                "customer_type": p.customer_type, "product_interest": p.product,
                "investable_assets": p.assets,
                "assets_currency": p.currency if p.currency is not None or "malformed:missing_currency" in p.tags
                else default_currency(p.country_code),
                "appropriateness": p.appropriateness, "phone_consent": p.phone_consent,
                "email_consent": p.email_consent,
                "first_contact_date": created(i) - p.first_contact_offset_s * 1000,
                "num_conversion_events": 1.0,
            }

        def index_of(s: str) -> int | None:
            return int(s) - HS_ID_BASE if s.isdigit() else None

        nn = max(n, 1)
        created_col = [start + (i * SPAN_MS) // nn for i in range(n)]
        h11, h12 = mixes(seed, n, 11), mixes(seed, n, 12)
        n_owners = len(owner_ids)
        self.contacts = LazyTable(
            "contacts", [hs_field(p) for p in HS_PROPERTIES], n,
            hot={"createdate": created_col, "lastmodifieddate": list(created_col),
                 # a form submission (a returning client's enquiry) moves this
                 "recent_conversion_date": list(created_col),
                 "lifecyclestage": ["lead" if h % 100 < 85 else stages[(h >> 8) % len(stages)]
                                    for h in h11],
                 # most intake contacts have no owner yet; the rest belong to reps
                 "hubspot_owner_id": [None if (a % 100 < 85 and b % 100 < 75) or not n_owners
                                      else owner_ids[(b >> 8) % n_owners]
                                      for a, b in zip(h11, h12, strict=True)],
                 "leadgate_status": [None] * n},
            cold=cold, id_of=lambda i: str(HS_ID_BASE + i), index_of=index_of,
            id_field="hs_object_id", modstamp_field="lastmodifieddate", base_ms=created,
            ms_to_index=lambda ms: ((ms - start) * max(n, 1)) // SPAN_MS - 1,
        )

    # -- new records (what web forms and people do; the API endpoints use these too)
    def new_lead(self, values: dict[str, Any], origin: str = "api") -> int:
        """Append a lead (in intake unless values say otherwise); returns its index."""
        with self.lock:
            t = self.stamp(seconds=True)
            row = {"OwnerId": self.intake_queue_id, "Status": "Open - Not Contacted",
                   "IsConverted": False, "LeadGate_Status__c": None, "Phone_Consent__c": False,
                   "Email_Consent__c": False, **values,
                   "CreatedDate": t, "LastModifiedDate": t, "SystemModstamp": t}
            i = self.leads.append(row)
            self.record_change("salesforce", self.leads.id_of(i), origin, sorted(values))
            return i

    def contact_by_email(self, email: str) -> int | None:
        """HubSpot's dedup key. The index is built on first use (one pass over the contacts)
        and kept up to date by writes."""
        with self.lock:
            if self._emails is None:
                t = self.contacts
                self._emails = {}
                for i in range(t.n):
                    e = t.get(i, "email")
                    if isinstance(e, str):
                        self._emails.setdefault(e.lower(), i)
            return self._emails.get(email.lower())

    def note_email(self, i: int, email: Any) -> None:
        if self._emails is not None and isinstance(email, str):
            self._emails.setdefault(email.lower(), i)

    def new_contact(self, props: dict[str, Any], origin: str = "api") -> int:
        with self.lock:
            t = self.stamp(seconds=False)
            row = {"lifecyclestage": "lead", "hubspot_owner_id": None, "leadgate_status": None,
                   **props, "createdate": t, "lastmodifieddate": t,
                   "recent_conversion_date": t, "num_conversion_events": 1.0}
            i = self.contacts.append(row)
            self.note_email(i, props.get("email"))
            self.record_change("hubspot", self.contacts.id_of(i), origin, sorted(props))
            return i

    def enquire(self, props: dict[str, Any]) -> tuple[int, bool]:
        """A form submission: HubSpot merges by email, so a returning client updates the
        existing contact (a new conversion) instead of creating one; its lifecycle stage is
        not moved back (HubSpot moves stages forward only). (index, created?)"""
        with self.lock:
            email = props.get("email")
            i = self.contact_by_email(email) if isinstance(email, str) else None
            if i is None:
                return self.new_contact(props, origin="form"), True
            t = self.stamp(seconds=False)
            n = self.contacts.get(i, "num_conversion_events") or 1.0
            self.contacts.set(i, {**props, "lastmodifieddate": t,
                                  "recent_conversion_date": t, "num_conversion_events": n + 1})
            self.record_change("hubspot", self.contacts.id_of(i), "form", sorted(props))
            return i, False

    def _add_owner(self, oid: str, name: str, email: str, user_id: int) -> None:
        first, _, last = name.partition(" ")
        at = self.anchor_ms - SPAN_MS
        from .wire import ms_to_iso

        self.owners.append({
            "id": oid, "email": email, "firstName": first, "lastName": last,
            "userId": user_id, "userIdIncludingInactive": user_id, "type": "PERSON",
            "createdAt": ms_to_iso(at), "updatedAt": ms_to_iso(at), "archived": False,
            "teams": [],
        })

    def add_hs_property(self, p: HsProperty) -> None:
        with self.lock:
            self.hs_properties[p.name] = p
            self.hs_property_created[p.name] = now_ms()
            self.contacts.fields[p.name] = hs_field(p)

    # -- a person working in the CRM
    def person_changes_owner(self, crm: str, i: int) -> None:
        """RevOps reassigns a record by hand (the owner_change fault)."""
        with self.lock:
            if crm == "salesforce":
                old = self.leads.get(i, "OwnerId")
                choices = [r.salesforce_id for r in self.reps if r.salesforce_id != old]
                new = choices[mix(self.seed, i, 21) % len(choices)] if choices else self.revops_user_id
                t = self.stamp(seconds=True)
                self.leads.set(i, {"OwnerId": new, "SystemModstamp": t, "LastModifiedDate": t})
                self.record_change("salesforce", self.leads.id_of(i), "person:Rita Revops",
                                   ["OwnerId"])
            else:
                old = self.contacts.get(i, "hubspot_owner_id")
                choices = [r.hubspot_id for r in self.reps if r.hubspot_id != old]
                new = choices[mix(self.seed, i, 21) % len(choices)] if choices else REVIEW_OWNER_ID
                self.contacts.set(i, {"hubspot_owner_id": new,
                                      "lastmodifieddate": self.stamp(seconds=False)})
                self.record_change("hubspot", self.contacts.id_of(i), "person:Rita Revops",
                                   ["hubspot_owner_id"])
            self.owner_changes.append((crm, self.leads.id_of(i) if crm == "salesforce"
                                       else self.contacts.id_of(i), str(old), new))

    def person_edits(self, crm: str, i: int, values: dict[str, Any]) -> None:
        """RevOps (or an enrichment tool) edits fields of a record: its modstamp moves on, as
        the CRM's own does."""
        with self.lock:
            if crm == "salesforce":
                t = self.stamp(seconds=True)
                self.leads.set(i, {**values, "SystemModstamp": t, "LastModifiedDate": t})
                table = self.leads
            else:
                self.contacts.set(i, {**values, "lastmodifieddate": self.stamp(seconds=False)})
                table = self.contacts
            self.record_change(crm, table.id_of(i), "person:Rita Revops", sorted(values))

    def person_converts(self, i: int) -> None:
        """A rep converts a Salesforce lead (into an account and contact): the lead stays,
        read-only, with its owner unchanged (a queue's lead converts with a user named for the
        new records), and no longer an open lead."""
        with self.lock:
            t = self.stamp(seconds=True)
            self.leads.set(i, {"IsConverted": True, "Status": "Closed - Converted",
                               "SystemModstamp": t, "LastModifiedDate": t})
            self.record_change("salesforce", self.leads.id_of(i), "person:Rita Revops",
                               ["IsConverted", "Status"])

    def person_deletes(self, crm: str, i: int) -> None:
        """RevOps deletes a record (or merges it into a duplicate): it is gone from the CRM."""
        with self.lock:
            table = self.leads if crm == "salesforce" else self.contacts
            table.delete(i)
            self.record_change(crm, table.id_of(i), "person:Rita Revops", ["deleted"])

    def record_change(self, crm: str, record_id: str, origin: str, fields: list[str]) -> None:
        self.changes.append({"crm": crm, "id": record_id, "origin": origin, "fields": fields})
        self.origins[f"{crm}:{origin}"] += 1

    def forget_change(self, crm: str, record_id: str, origin: str) -> None:
        """Take back the latest change of this record by this origin (a rolled-back write)."""
        with self.lock:
            for entry in reversed(self.changes):
                if entry["crm"] == crm and entry["id"] == record_id and entry["origin"] == origin:
                    self.changes.remove(entry)
                    key = f"{crm}:{origin}"
                    self.origins[key] -= 1
                    if self.origins[key] <= 0:
                        del self.origins[key]
                    return

    # -- persistence
    def to_json(self) -> dict[str, Any]:
        with self.lock:
            def dump(t: LazyTable) -> dict[str, Any]:
                keys = set(t.overrides) | t.touched
                return {
                    "n": t.n,
                    "records": {str(i): {**{f: t.cols[f][i] for f in t.cols},
                                         **t.overrides.get(i, {})} for i in sorted(keys)},
                    "deleted": sorted(t.deleted),
                }

            return {
                "format": "leadgate-sandbox/1", "seed": self.seed, "leads": self.n_leads,
                "contacts": self.n_contacts, "anchor_ms": self.anchor_ms,
                "last_ms": self._last_ms,
                "lead_fields": sorted(f for f in self.lead_extra_fields
                                      if f.lower() in self.leads.fields),
                "hs_properties": sorted(p.name for p in LEADGATE_HS_PROPERTIES
                                        if p.name in self.hs_properties),
                "salesforce": dump(self.leads), "hubspot": dump(self.contacts),
            }

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json()), encoding="utf-8")
        tmp.replace(path)

    def load(self, data: dict[str, Any]) -> None:
        with self.lock:
            for name in data.get("lead_fields", []):
                f = self.lead_extra_fields.get(name)
                if f and f.name.lower() not in self.leads.fields:
                    self.install_salesforce_field(f)
            for name in data.get("hs_properties", []):
                p = next((p for p in LEADGATE_HS_PROPERTIES if p.name == name), None)
                if p and p.name not in self.hs_properties:
                    self.hs_groups.setdefault("leadgate", "LeadGate")
                    self.add_hs_property(p)
            for key, table in (("salesforce", self.leads), ("hubspot", self.contacts)):
                part = data.get(key) or {}
                for idx, values in sorted(part.get("records", {}).items(), key=lambda kv: int(kv[0])):
                    i = int(idx)
                    while table.n <= i:
                        table.append({})
                    table.set(i, values)
                    table.touched.add(i)
                for i in part.get("deleted", []):
                    table.delete(int(i))
            self._last_ms = max(self._last_ms, int(data.get("last_ms", 0)))
