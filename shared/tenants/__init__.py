"""Orgs, teams and users in Postgres, and a key resolved through them (shared/tenancy.py)."""
