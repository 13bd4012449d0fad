"""The demo's broker (config/broker.py): no message lost while a reader polls the folder.

kombu's own filesystem transport lets a reader take a message file before its
content is written; the reader then gets an empty message and the task is gone.
Here writers in several threads publish while a reader consumes as fast as it
can: every message arrives once and whole.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from kombu import Connection

import config.broker
from config.broker import TRANSPORT
from tests.helpers.processes import run_python

WRITERS, PER_WRITER = 4, 150


def folder_options(folder: Path) -> dict:
    """The transport's folders, all in ``folder`` (exchange files too, not in the cwd)."""
    (folder / "control").mkdir(exist_ok=True)
    return {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }


def test_the_settings_select_it_for_the_filesystem_broker(tmp_path):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_FOLDER": str(tmp_path),
    }
    script = (
        "import django; django.setup(); from config.celery import app; "
        "transport = type(app.connection_for_write().transport); "
        "print(f'{transport.__module__}:{transport.__qualname__}')"
    )
    answer = run_python(["-c", script], env=environment)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == TRANSPORT


def test_a_reader_polling_during_a_publish_finds_nothing_then_the_whole_message(
    tmp_path, monkeypatch
):
    """The exact moment kombu's own transport loses a message: the reader polls while the
    message is being written."""
    options = folder_options(tmp_path)
    polled_midway = []
    # Its own queue name: kombu remembers bindings per process, not per folder.
    with (
        Connection("filesystem://", transport=TRANSPORT, transport_options=options) as writer,
        Connection("filesystem://", transport=TRANSPORT, transport_options=options) as reader,
    ):
        reader_queue = reader.SimpleQueue("midway")
        real_dumps = config.broker.dumps

        def dumps_while_the_reader_polls(payload):
            with pytest.raises(reader_queue.Empty):
                reader_queue.get(block=False)
            polled_midway.append(True)
            return real_dumps(payload)

        monkeypatch.setattr(config.broker, "dumps", dumps_while_the_reader_polls)
        writer.SimpleQueue("midway").put({"task": "maestrano_sync.import_company", "args": [7]})

        message = reader_queue.get(timeout=5)
        assert polled_midway == [True]
        assert message.payload == {"task": "maestrano_sync.import_company", "args": [7]}
        message.ack()


def test_every_message_arrives_whole_while_the_reader_polls(tmp_path):
    options = folder_options(tmp_path)
    payload = {"text": "x" * 20_000}  # big enough for a write to take a while

    def publish(writer: int) -> None:
        with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
            queue = conn.SimpleQueue("demo")
            for number in range(PER_WRITER):
                queue.put({**payload, "id": f"{writer}-{number}"})
            queue.close()

    writers = [threading.Thread(target=publish, args=(n,)) for n in range(WRITERS)]
    received: list[str] = []
    with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
        queue = conn.SimpleQueue("demo")
        for thread in writers:
            thread.start()
        while len(received) < WRITERS * PER_WRITER:
            message = queue.get(block=True, timeout=30)
            assert message.payload["text"] == payload["text"]
            received.append(message.payload["id"])
            message.ack()
        queue.close()
    for thread in writers:
        thread.join()

    assert sorted(received) == sorted(f"{w}-{n}" for w in range(WRITERS) for n in range(PER_WRITER))
    assert [path.name for path in tmp_path.iterdir()] == ["control"]
