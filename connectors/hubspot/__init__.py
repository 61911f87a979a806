"""HubSpot adapter (hubspot-api-client, CRM v3 contacts)."""
