"""Protocol core of the Maestrano integration: presets, metadata, SAML and HTTP clients."""
