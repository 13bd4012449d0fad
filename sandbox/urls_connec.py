"""Sandbox URLs: connec."""

urlpatterns: list = []
