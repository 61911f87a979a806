"""The commented leadgate.yaml that `leadgate init` writes.

Its field names are the sandbox CRM's seeded fields (`leadgate sandbox serve`); on a real org,
change the mapping to your own field names and picklist values, then run `leadgate connect`.
"""

TEMPLATE = """\
# leadgate.yaml: what leadgate connects to and how your CRM's fields feed the routing policy.
# Secrets are never written here: each one names an environment variable ({env: NAME}) or a
# file ({file: /path}). Check everything with `leadgate connect salesforce|hubspot`.

# The ledger and sync state. LEADGATE_DATABASE_URL overrides it; SQLite is the default. A
# PostgreSQL password never goes here: set LEADGATE_DATABASE_URL from your secret store, or
# let libpq read ~/.pgpass (postgresql+psycopg://leadgate@db.internal/leadgate).
database_url: sqlite:///leadgate.db
# The routing policy: one YAML file or a folder of them (merged in name order).
policy: policy
# The ledger's Ed25519 signing key (created by `leadgate init`, mode 0600). Back it up.
signing_key: leadgate-signing.key

sources:
  salesforce:
    kind: salesforce
    connection:
      login_url: https://login.salesforce.com   # or https://test.salesforce.com, My Domain
      api_version: "59.0"
      auth: password              # jwt | client_credentials | password
      username: integration@example.com
      client_id: {env: LEADGATE_SF_CLIENT_ID}
      client_secret: {env: LEADGATE_SF_CLIENT_SECRET}
      password: {env: LEADGATE_SF_PASSWORD}
      security_token: {env: LEADGATE_SF_SECURITY_TOKEN}
      # private_key: {file: /etc/leadgate/sf-jwt.key}   # for auth: jwt
      # ca_file: /etc/leadgate/corporate-ca.pem         # a private CA; wins over REQUESTS_CA_BUNDLE
    object: Lead
    # Intake: leads owned by this queue (Name or DeveloperName) with no leadgate status yet.
    intake:
      owner_queue: Lead Intake
      unstamped_field: LeadGate_Status__c
    # Refusals are assigned to this queue (created by `leadgate install salesforce`).
    review_queue: Compliance_Review
    # Lead field <- CRM field. `values` maps your picklist values to leadgate's; a value missing
    # from the map makes the record a refusal (invalid_lead) naming it, unless passthrough: true.
    mapping:
      id: Id
      first_name: FirstName
      last_name: LastName
      email: Email
      phone: Phone
      company: Company
      country:
        field: Country
        passthrough: true           # ISO names and codes pass; map the other spellings
        values: {UK: GB, England: GB, Deutschland: DE, "España": ES, Italia: IT, Polska: PL,
                 Schweiz: CH, Brasil: BR}
      state: State
      postcode: PostalCode
      customer_type:
        field: Customer_Type__c
        values:
          Retail Customer: retail
          High Net Worth: high_net_worth
          Professional Client: professional
          Eligible Counterparty: eligible_counterparty
          Institutional: institutional
      product:
        field: Product_Interest__c
        values:
          Easy Saver: easy_saver
          Structured Note: structured_note
          Pension Transfer: pension_transfer
          Term Life: term_life
          Private Mandate: private_mandate
          EU Mortgage: eu_mortgage
      investable_assets.amount: {field: Investable_Assets__c, type: number}
      investable_assets.currency: CurrencyIsoCode
      assessments.appropriateness:
        field: Appropriateness__c
        values: {Passed: passed, Failed: failed}
      consent.phone: {field: Phone_Consent__c, type: boolean}
      consent.email: {field: Email_Consent__c, type: boolean}
      first_contact_at: {field: First_Contact__c, type: datetime}
      stage: Status
      attributes.lead_source: LeadSource
    limits:
      api_budget: 10000             # calls per run; the run stops cleanly and resumes next time
      org_reserve_percent: 10       # never use the org's last 10% of daily API requests
    retry: {attempts: 6, initial_wait: 0.5, max_wait: 30, retry_after_cap: 120}
    overlap_seconds: 60             # re-read changes this far behind the cursor (clock skew)
    conflict_check: true            # never overwrite an owner a person set after leadgate read it

  hubspot:
    kind: hubspot
    connection:
      base_url: https://api.hubapi.com
      token: {env: LEADGATE_HUBSPOT_TOKEN}     # a private app token
    # Intake: contacts in this lifecycle stage with no leadgate status yet.
    intake:
      lifecyclestage: lead
      unstamped_property: leadgate_status
    review_owner_id: "90001"        # the compliance review owner (refusals are assigned to it)
    mapping:
      id: hs_object_id
      first_name: firstname
      last_name: lastname
      email: email
      phone: phone
      company: company
      country:
        field: country
        passthrough: true
        values: {UK: GB, England: GB, Deutschland: DE, "España": ES, Italia: IT, Polska: PL,
                 Schweiz: CH, Brasil: BR}
      state: state
      postcode: zip
      customer_type:
        field: customer_type
        values:
          Retail Customer: retail
          High Net Worth: high_net_worth
          Professional Client: professional
          Eligible Counterparty: eligible_counterparty
          Institutional: institutional
      product:
        field: product_interest
        values:
          Easy Saver: easy_saver
          Structured Note: structured_note
          Pension Transfer: pension_transfer
          Term Life: term_life
          Private Mandate: private_mandate
          EU Mortgage: eu_mortgage
      investable_assets.amount: {field: investable_assets, type: number}
      investable_assets.currency: assets_currency
      assessments.appropriateness:
        field: appropriateness
        values: {Passed: passed, Failed: failed}
      consent.phone: {field: phone_consent, type: boolean}
      consent.email: {field: email_consent, type: boolean}
      first_contact_at: {field: first_contact_date, type: datetime}
      stage: lifecyclestage
    limits: {api_budget: 10000, org_reserve_percent: 10}
    overlap_seconds: 60
    conflict_check: true
"""
