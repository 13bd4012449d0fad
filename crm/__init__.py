"""The example application's own models, synced through registered mappers."""
