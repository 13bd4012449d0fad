"""The demo's broker: kombu's filesystem transport, with messages written atomically.

kombu's own filesystem transport creates a message file, then writes into it. A
worker polling the folder can take the file in between, read it empty and drop
the message (on a busy machine the demo lost its initial import that way). Here
a message is written under a name the reader skips (it does not end in
``.<queue>.msg``) and renamed into place once complete, so a reader sees a whole
message or none.

Selected by ``CELERY_BROKER_TRANSPORT`` when ``CELERY_BROKER_URL`` is
``filesystem://`` (config/settings.py).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

#: The value of ``CELERY_BROKER_TRANSPORT`` that selects this transport.
TRANSPORT = "config.broker:Transport"


class Channel(filesystem.Channel):
    # kombu's filesystem channel names this argument "payload", its base channel "message"
    # (both passed by position); the kombu stubs ignore the same mismatch for filesystem.Channel.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put a message on ``queue``: write it aside, then rename it into the folder."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        descriptor, partial = tempfile.mkstemp(dir=self.data_folder_out, prefix=".partial-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add a message to {self.data_folder_out!r}") from error


class Transport(filesystem.Transport):
    Channel = Channel
