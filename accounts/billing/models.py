"""Billing models (imported by accounts.models so Django registers them)."""
