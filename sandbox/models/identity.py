"""Sandbox models: identity."""
