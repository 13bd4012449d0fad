"""Billing: plans, recurring bills set up on company creation, ad-hoc bills."""
