"""Settings of the Celery worker that the worker tests start (see tests/helpers/worker.py).

The project's settings, plus the ``MAESTRANO`` setting of the test that started
the worker (its presets point at that test's live server).
"""

import json
import os

from tests.settings import *  # noqa: F403

MAESTRANO = json.loads(os.environ["WORKER_MAESTRANO_JSON"])
# Messages of a killed worker come back quickly (Redis transport).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **globals().get("CELERY_BROKER_TRANSPORT_OPTIONS", {}),
    "visibility_timeout": 10,
}
if os.environ.get("CELERY_BROKER_KEYPREFIX"):
    # The keys of the test that started this worker (tests/helpers/worker.py).
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_BROKER_KEYPREFIX"]
