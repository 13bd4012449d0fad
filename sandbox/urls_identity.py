"""Sandbox URLs: identity."""

urlpatterns: list = []
