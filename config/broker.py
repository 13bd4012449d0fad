"""The demo's broker: kombu's filesystem transport, with messages published whole.

kombu's ``filesystem`` transport creates a message's file, then writes the
message into it, while a worker takes any file of its queue it finds in the
folder (it moves the file away, reads it and deletes it). A worker that lists
the folder between the publisher's two steps takes an empty file, cannot decode
it and deletes it: the task is lost and never runs (an initial import that
never starts). The more loaded the machine, the wider that window.

Here a message is written under a name no queue matches (``.<name>.tmp``) and
renamed to its queue's name once complete; a rename within one folder is
atomic, so a worker only ever sees whole messages. ``config/settings.py`` selects
this transport (``CELERY_BROKER_TRANSPORT``) whenever ``CELERY_BROKER_URL`` is
``filesystem://``; the rest of kombu's transport (reading, purging, fanout) is
unchanged.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

#: The value of ``CELERY_BROKER_TRANSPORT`` (kombu resolves ``module:Class``).
TRANSPORT = "config.broker:Transport"


class Channel(filesystem.Channel):
    """kombu's filesystem channel whose ``_put`` renames a complete file into the queue."""

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        # The same name as kombu gives it: the reader orders messages by it.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.tmp")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel
