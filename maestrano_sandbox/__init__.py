"""An emulation of the Maestrano platform (IdP, Account API, Connec!), spoken to over HTTP only."""
