"""Sandbox models: account."""
