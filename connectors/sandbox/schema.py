"""Field and property definitions of the sandbox org and portal (what describe returns).

Names follow the sandbox contract in PLAN.md exactly; other areas map these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CUSTOMER_TYPES = (
    "Retail Customer",
    "High Net Worth",
    "Professional Client",
    "Eligible Counterparty",
    "Institutional",
)
PRODUCTS = (
    "Easy Saver",
    "Structured Note",
    "Pension Transfer",
    "Term Life",
    "Private Mandate",
    "EU Mortgage",
)
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                 "Closed - Not Converted")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
APPROPRIATENESS = ("Passed", "Failed")
CURRENCIES = ("GBP", "EUR", "USD", "AED", "CHF")
LEADGATE_STATUSES = ("assigned", "refused", "review", "error")


@dataclass(frozen=True)
class SfField:
    """One Salesforce field as describe reports it. `type` uses Salesforce's names."""

    name: str
    type: str  # id, string, picklist, email, phone, datetime, date, boolean, currency, reference, textarea
    label: str
    length: int = 0
    custom: bool = False
    updateable: bool = True
    nillable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()


def _f(name: str, type_: str, label: str, **kw: Any) -> SfField:
    length = {"string": 255, "email": 80, "phone": 40, "picklist": 255, "textarea": 32768,
              "id": 18, "reference": 18}.get(type_, 0)
    return SfField(name, type_, label, length=int(kw.pop("length", length)), **kw)


LEAD_FIELDS: tuple[SfField, ...] = (
    _f("Id", "id", "Lead ID", updateable=False, nillable=False),
    _f("FirstName", "string", "First Name", length=40),
    _f("LastName", "string", "Last Name", length=80, nillable=False),
    _f("Email", "email", "Email"),
    _f("Phone", "phone", "Phone"),
    _f("Company", "string", "Company", nillable=False),
    _f("Street", "textarea", "Street", length=255),
    _f("City", "string", "City", length=40),
    _f("State", "string", "State/Province", length=80),
    _f("PostalCode", "string", "Zip/Postal Code", length=20),
    _f("Country", "string", "Country", length=80),
    _f("LeadSource", "picklist", "Lead Source", picklist=LEAD_SOURCES),
    _f("Status", "picklist", "Lead Status", picklist=LEAD_STATUSES, nillable=False),
    _f("IsConverted", "boolean", "Converted", updateable=False, nillable=False),
    _f("OwnerId", "reference", "Owner ID", nillable=False, reference_to=("Group", "User")),
    _f("CreatedDate", "datetime", "Created Date", updateable=False, nillable=False),
    _f("LastModifiedDate", "datetime", "Last Modified Date", updateable=False, nillable=False),
    _f("SystemModstamp", "datetime", "System Modstamp", updateable=False, nillable=False),
    _f("CurrencyIsoCode", "picklist", "Lead Currency", picklist=CURRENCIES, restricted=True),
    _f("Customer_Type__c", "picklist", "Customer Type", custom=True, picklist=CUSTOMER_TYPES),
    _f("Product_Interest__c", "picklist", "Product Interest", custom=True, picklist=PRODUCTS),
    _f("Investable_Assets__c", "currency", "Investable Assets", custom=True),
    _f("Appropriateness__c", "picklist", "Appropriateness", custom=True,
       picklist=APPROPRIATENESS),
    _f("Phone_Consent__c", "boolean", "Phone Consent", custom=True, nillable=False),
    _f("Email_Consent__c", "boolean", "Email Consent", custom=True, nillable=False),
    _f("First_Contact__c", "datetime", "First Contact", custom=True),
)

# leadgate's own fields: absent until `leadgate install salesforce` creates them (Tooling API).
LEADGATE_SF_FIELDS: tuple[SfField, ...] = (
    _f("LeadGate_Status__c", "string", "LeadGate Status", custom=True, length=40),
    _f("LeadGate_Decision_Id__c", "string", "LeadGate Decision Id", custom=True, length=40),
    _f("LeadGate_Reason__c", "string", "LeadGate Reason", custom=True, length=255),
    _f("LeadGate_Policy_Version__c", "string", "LeadGate Policy Version", custom=True,
       length=80),
    _f("LeadGate_Outreach__c", "textarea", "LeadGate Outreach", custom=True, length=32768),
    _f("LeadGate_Not_Before__c", "datetime", "LeadGate Not Before", custom=True),
)

# Tooling API metadata type -> describe type (what the installer sends).
TOOLING_TYPES = {
    "Text": "string", "TextArea": "textarea", "LongTextArea": "textarea", "DateTime": "datetime",
    "Date": "date", "Checkbox": "boolean", "Number": "double", "Currency": "currency",
    "Picklist": "picklist", "Email": "email", "Phone": "phone",
}

USER_FIELDS: tuple[SfField, ...] = (
    _f("Id", "id", "User ID", updateable=False),
    _f("Username", "string", "Username", length=80),
    _f("Name", "string", "Full Name", length=121, updateable=False),
    _f("FirstName", "string", "First Name", length=40),
    _f("LastName", "string", "Last Name", length=80),
    _f("Email", "email", "Email"),
    _f("IsActive", "boolean", "Active", nillable=False),
    _f("UserType", "picklist", "User Type", picklist=("Standard",)),
)

GROUP_FIELDS: tuple[SfField, ...] = (
    _f("Id", "id", "Group ID", updateable=False),
    _f("Name", "string", "Name", length=40),
    _f("DeveloperName", "string", "Developer Name", length=80),
    _f("Type", "picklist", "Type", picklist=("Queue", "Regular")),
    _f("Email", "email", "Email"),
)

QUEUE_SOBJECT_FIELDS: tuple[SfField, ...] = (
    _f("Id", "id", "Queue Sobject ID", updateable=False),
    _f("QueueId", "reference", "Group ID", reference_to=("Group",)),
    _f("SobjectType", "picklist", "Sobject Type", picklist=("Lead", "Case")),
)

ORGANIZATION_FIELDS: tuple[SfField, ...] = (
    _f("Id", "id", "Organization ID", updateable=False),
    _f("Name", "string", "Name", length=80),
    _f("IsSandbox", "boolean", "Is Sandbox", updateable=False),
)

CUSTOM_FIELD_FIELDS: tuple[SfField, ...] = (
    _f("Id", "id", "Custom Field Definition ID", updateable=False),
    _f("DeveloperName", "string", "Field Name", length=40),
    _f("TableEnumOrId", "string", "Table Enum or ID", length=40),
    _f("FullName", "string", "Full Name", length=255),
)


@dataclass
class HsProperty:
    """One HubSpot property as the properties API reports it."""

    name: str
    label: str
    type: str  # string, number, date, datetime, enumeration, bool
    field_type: str  # text, number, date, select, booleancheckbox, ...
    group_name: str = "contactinformation"
    options: list[dict[str, object]] = field(default_factory=list)
    hubspot_defined: bool = True
    description: str = ""

    def to_json(self, created_ms: int) -> dict[str, object]:
        from .wire import ms_to_iso

        return {
            "name": self.name, "label": self.label, "type": self.type,
            "fieldType": self.field_type, "groupName": self.group_name,
            "description": self.description, "options": self.options,
            "displayOrder": -1, "calculated": False, "externalOptions": False,
            "hasUniqueValue": False, "hidden": False, "hubspotDefined": self.hubspot_defined,
            "formField": True, "archived": False,
            "createdAt": ms_to_iso(created_ms), "updatedAt": ms_to_iso(created_ms),
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.name in HS_READ_ONLY},
        }


def _opts(values: tuple[str, ...]) -> list[dict[str, object]]:
    return [{"label": v, "value": v, "displayOrder": n, "hidden": False}
            for n, v in enumerate(values)]


_BOOL_OPTS = [{"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
              {"label": "No", "value": "false", "displayOrder": 1, "hidden": False}]

LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                    "opportunity", "customer", "evangelist", "other")
HS_READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate",
                          "recent_conversion_date", "num_conversion_events"})

HS_PROPERTIES: tuple[HsProperty, ...] = (
    HsProperty("firstname", "First Name", "string", "text"),
    HsProperty("lastname", "Last Name", "string", "text"),
    HsProperty("email", "Email", "string", "text"),
    HsProperty("phone", "Phone Number", "string", "phonenumber"),
    HsProperty("company", "Company Name", "string", "text"),
    HsProperty("country", "Country/Region", "string", "text"),
    HsProperty("state", "State/Region", "string", "text"),
    HsProperty("zip", "Postal Code", "string", "text"),
    HsProperty("lifecyclestage", "Lifecycle Stage", "enumeration", "radio",
               options=_opts(LIFECYCLE_STAGES)),
    HsProperty("hubspot_owner_id", "Contact owner", "enumeration", "select",
               group_name="sales_properties"),
    HsProperty("createdate", "Create Date", "datetime", "date"),
    HsProperty("lastmodifieddate", "Last Modified Date", "datetime", "date"),
    HsProperty("hs_object_id", "Record ID", "number", "number"),
    HsProperty("recent_conversion_date", "Recent Conversion Date", "datetime", "date",
               group_name="conversioninformation"),
    HsProperty("num_conversion_events", "Number of Form Submissions", "number", "number",
               group_name="conversioninformation"),
    HsProperty("customer_type", "Customer Type", "enumeration", "select",
               group_name="firm", options=_opts(CUSTOMER_TYPES), hubspot_defined=False),
    HsProperty("product_interest", "Product Interest", "enumeration", "select",
               group_name="firm", options=_opts(PRODUCTS), hubspot_defined=False),
    HsProperty("investable_assets", "Investable Assets", "number", "number",
               group_name="firm", hubspot_defined=False),
    HsProperty("assets_currency", "Assets Currency", "enumeration", "select",
               group_name="firm", options=_opts(CURRENCIES), hubspot_defined=False),
    HsProperty("appropriateness", "Appropriateness", "enumeration", "select",
               group_name="firm", options=_opts(APPROPRIATENESS), hubspot_defined=False),
    HsProperty("phone_consent", "Phone Consent", "bool", "booleancheckbox",
               group_name="firm", options=_BOOL_OPTS, hubspot_defined=False),
    HsProperty("email_consent", "Email Consent", "bool", "booleancheckbox",
               group_name="firm", options=_BOOL_OPTS, hubspot_defined=False),
    HsProperty("first_contact_date", "First Contact Date", "datetime", "date",
               group_name="firm", hubspot_defined=False),
)

# leadgate's own properties, created by `leadgate install hubspot` in group "leadgate".
LEADGATE_HS_PROPERTIES: tuple[HsProperty, ...] = (
    HsProperty("leadgate_status", "LeadGate Status", "string", "text", "leadgate",
               hubspot_defined=False),
    HsProperty("leadgate_decision_id", "LeadGate Decision Id", "string", "text", "leadgate",
               hubspot_defined=False),
    HsProperty("leadgate_reason", "LeadGate Reason", "string", "text", "leadgate",
               hubspot_defined=False),
    HsProperty("leadgate_policy_version", "LeadGate Policy Version", "string", "text",
               "leadgate", hubspot_defined=False),
    HsProperty("leadgate_outreach", "LeadGate Outreach", "string", "textarea", "leadgate",
               hubspot_defined=False),
    HsProperty("leadgate_not_before", "LeadGate Not Before", "datetime", "date", "leadgate",
               hubspot_defined=False),
    HsProperty("leadgate_read_at", "LeadGate Read At", "datetime", "date", "leadgate",
               hubspot_defined=False),
)

HS_GROUPS = (("contactinformation", "Contact information"), ("sales_properties", "Sales"),
             ("conversioninformation", "Conversion information"),
             ("firm", "Northwind firm data"))
