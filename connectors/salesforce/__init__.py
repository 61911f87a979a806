"""Salesforce adapter (simple-salesforce over a requests.Session)."""
