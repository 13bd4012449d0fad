"""Admin of the sandbox's Connec! data hub."""
