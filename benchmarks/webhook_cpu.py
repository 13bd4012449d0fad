"""CPU per Connec! notification, in this process, through Django's whole WSGI stack.

    python benchmarks/webhook_cpu.py --db postgresql [--calls 300] [--repeat 5] [--profile 30]

The request ``benchmarks/sync.py``'s latency phases send (one record, HTTP basic auth,
the example project's settings and middleware, Celery publishing to Redis), handed to
``WSGIHandler`` with no HTTP server: CPU time per call (``time.process_time``, best and
median of the repeats), which the load of a shared machine moves less than wall
time. ``--profile N``: cProfile (CPU clock) of one more round, the N largest cumulative
entries. Every answer must be a 202.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import statistics
import sys
import time

import harness

PG_NAME = "bench_webhook_cpu"


def run(args) -> dict:
    harness.setup_webhook(
        db=args.db,
        pg_name=PG_NAME,
        prefix="bench-webhook-cpu-",
        # As config/gunicorn.py: persistent connections, checked before each request.
        extra_env={"DATABASE_CONN_MAX_AGE": "600"},
    )
    from django.core.handlers.wsgi import WSGIHandler

    # The throttle stays on (its cost is measured) at the rate the served benchmark uses.
    harness.point_webhook_presets_at("http://127.0.0.1:9")
    handler = WSGIHandler()
    authorization = harness.webhook_authorization()
    bodies = [
        json.dumps(harness.notification(harness.WEBHOOK_GROUP_UID, 1)).encode()
        for _ in range(args.calls * (args.repeat + 1) + 10)
    ]
    position = 0

    def call() -> None:
        nonlocal position
        body = bodies[position]
        position += 1
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": harness.WEBHOOK_PATH,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": authorization,
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        statuses = []
        chunks = handler(environ, lambda status, headers: statuses.append(status))
        b"".join(chunks)
        chunks.close()
        assert statuses[0].startswith("202"), statuses

    for _ in range(10):  # warm up: connections, caches
        call()
    per_call = []
    for _ in range(args.repeat):
        started = time.process_time()
        for _ in range(args.calls):
            call()
        per_call.append((time.process_time() - started) / args.calls * 1000)
    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.calls):
            call()
        profiler.disable()
        if args.profile_out:
            profiler.dump_stats(args.profile_out)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile)
        print(out.getvalue())
    print(
        f"CPU ms per notification ({args.db}, {args.calls} calls x {args.repeat}): "
        + ", ".join(f"{value:.2f}" for value in per_call)
    )
    return {
        "webhook_cpu_ms_best": round(min(per_call), 3),
        "webhook_cpu_ms_median": round(statistics.median(per_call), 3),
    }


def main() -> None:
    parser = harness.parser(__doc__, records=None, repeat=5)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--profile-out", help="write the profile (pstats) to this file")
    harness.emit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
