"""Sandbox models: connec."""
