"""The demo's broker (config/broker.py): a worker never takes a message that is being written.

kombu's own filesystem transport creates a message's file and then writes it; a
worker polling in between took the empty file and lost the task.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from kombu import Connection

import config.broker
from config.broker import TRANSPORT

ROOT = Path(__file__).resolve().parents[1]


def connection(folder) -> Connection:
    (folder / "control").mkdir(exist_ok=True)
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": 0.0,
    }
    return Connection("filesystem://", transport=TRANSPORT, transport_options=options)


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
    answer = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.strip() == TRANSPORT


def test_a_worker_polling_during_a_publish_finds_nothing_then_the_whole_message(
    tmp_path, monkeypatch
):
    polled_midway = []
    with connection(tmp_path) as publisher, connection(tmp_path) as worker:
        worker_queue = worker.SimpleQueue("tasks")
        real_dumps = config.broker.dumps

        def dumps_while_a_worker_polls(payload):
            # The message's file exists at this point of the publish: the worker polls now.
            with pytest.raises(worker_queue.Empty):
                worker_queue.get(block=False)
            polled_midway.append(True)
            return real_dumps(payload)

        monkeypatch.setattr(config.broker, "dumps", dumps_while_a_worker_polls)
        publisher.SimpleQueue("tasks").put({"task": "sync.import_company", "args": [7]})

        message = worker_queue.get(timeout=5)
        assert polled_midway == [True]
        assert message.payload == {"task": "sync.import_company", "args": [7]}
        message.ack()


def test_no_message_is_lost_while_publishers_and_a_worker_run_together(tmp_path):
    publishers, per_publisher = 3, 150
    received: list[dict] = []
    errors: list[str] = []
    done = threading.Event()

    def consume() -> None:
        with connection(tmp_path) as worker:
            queue = worker.SimpleQueue("tasks")
            while len(received) < publishers * per_publisher:
                try:
                    message = queue.get(timeout=0.05)
                except queue.Empty:
                    if done.is_set() and not any(tmp_path.glob("*.tasks.msg")):
                        return
                    continue
                except Exception as error:  # kombu's own transport: JSONDecodeError
                    errors.append(repr(error))
                    continue
                received.append(message.payload)
                message.ack()

    def publish(number: int) -> None:
        with connection(tmp_path) as publisher:
            queue = publisher.SimpleQueue("tasks")
            for index in range(per_publisher):
                queue.put({"publisher": number, "index": index})

    worker = threading.Thread(target=consume)
    worker.start()
    threads = [threading.Thread(target=publish, args=(number,)) for number in range(publishers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    worker.join(timeout=600)  # it stops once every file is taken (slow on a loaded machine)
    assert not worker.is_alive()

    assert errors == []
    assert len(received) == publishers * per_publisher
    assert {(m["publisher"], m["index"]) for m in received} == {
        (p, i) for p in range(publishers) for i in range(per_publisher)
    }
