"""The demo's broker (config/broker.py): no message lost while a reader polls the folder.

kombu's own filesystem transport lets a reader take a message file before its
content is written; the reader then gets an empty message and the task is gone.
Here writers in several threads publish while a reader consumes as fast as it
can: every message arrives once and whole.
"""

from __future__ import annotations

import threading

from kombu import Connection

from config.broker import TRANSPORT

WRITERS, PER_WRITER = 4, 150


def test_every_message_arrives_whole_while_the_reader_polls(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "store_processed": False,
    }
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
    assert [path.name for path in tmp_path.iterdir()] == []
