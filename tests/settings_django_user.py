"""The example project with Django's own ``auth.User`` as the user model.

``make test`` runs the SSO, session-check and account-webhook tests once more
with it, to show that the Maestrano apps need no user model of their own.
"""

from tests.settings import *  # noqa: F403  (the sandbox mounted, as for the whole suite)

AUTH_USER_MODEL = "auth.User"
