"""Views of the emulated platform, one module per area.

IdP, sessions, Account API, configuration, pages; the Connec! API is in
``maestrano_sandbox.connec``.
"""
