"""Companies, users and memberships; SSO, account webhooks and billing."""
