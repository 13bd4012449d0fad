"""Scale-out: one, then two Celery worker processes draining the sync queues of many companies.

    python benchmarks/scale.py --companies 20 --records 200 [--db postgresql]

Fresh databases (PostgreSQL by default: the workers are separate processes),
the sandbox served over HTTP as the companies' Connec!, Celery on Redis
(``--broker``, a database of its own, flushed first). For each worker count
(1, then 2; each worker ``celery -A config worker --concurrency=1``), every
company gets ``--records`` changes to sync, queued before the workers start:

* half pushed (outbox): ``records / 4`` organizations created here, then each
  renamed (``… v2``): the push must leave Connec! with one record per
  organization holding its last name;
* half pulled (inbox): ``records / 2`` people arrive from Connec! in two
  notifications, a first and a second version of each (``updated_at`` later):
  the people here must hold the second version, once each.

Timed from the moment every worker is ready until every outbox and inbox entry
is done. ``duplicates``: Connec! organizations beyond one per local one, people
beyond one per Connec! id, IdMap rows beyond one per object. ``order_violations``:
records left with anything but their last version (per-company order lost).
Prints a table; the last line is one JSON object with ``workers_1_records_per_s``,
``workers_2_records_per_s``, ``speedup``, ``duplicates`` and ``order_violations``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import harness

PG_NAME = "bench_scale"
API_ID = "bench-app"
API_KEY = "bench-key-" + "x" * 16
DEFAULT_BROKER = harness.bench_redis_url(13)
READY_TIMEOUT = 90.0


def preset_environment(url: str) -> dict[str, str]:
    """The preset as ``MAESTRANO_*`` variables, for this process's settings and the workers'."""
    return {
        "MAESTRANO_APP_HOST": "http://127.0.0.1:9",
        "MAESTRANO_API_ID": API_ID,
        "MAESTRANO_API_KEY": API_KEY,
        "MAESTRANO_API_HOST": f"{url}/sandbox",
        "MAESTRANO_CONNEC_HOST": f"{url}/sandbox/connec",
        "MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS": "organizations,people",
    }


def apply_presets(url: str) -> None:
    from django.conf import settings

    from maestrano_integration.conf import maestrano_settings

    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": {
                "app": {"host": "http://127.0.0.1:9"},
                "api": {"id": API_ID, "key": API_KEY, "host": f"{url}/sandbox"},
                "connec": {"host": f"{url}/sandbox/connec", "timeout": 120},
                "webhook": {"connec": {"subscriptions": {"organizations": True, "people": True}}},
            }
        },
    }
    maestrano_settings.reload()


def flush_broker(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    client.flushdb()
    client.close()


class Workers:
    """``count`` worker processes (``--concurrency=1`` each), started together."""

    def __init__(self, count: int, *, env: dict[str, str], log_dir: Path) -> None:
        self.count = count
        self.env = env
        self.logs = [log_dir / f"worker-{count}-{n}.log" for n in range(count)]
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Workers:
        for n, log_path in enumerate(self.logs):
            with log_path.open("w") as log:
                self.processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "celery",
                            "-A",
                            "config",
                            "worker",
                            "--pool=solo",
                            "--loglevel=INFO",
                            "--without-gossip",
                            "--without-mingle",
                            "--without-heartbeat",
                            f"--hostname=bench-scale-{self.count}-{n}@%h",
                        ],
                        cwd=harness.ROOT,
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = set(range(self.count))
        while waiting and time.monotonic() < deadline:
            for n in list(waiting):
                if "ready." in self.logs[n].read_text(errors="replace"):
                    waiting.discard(n)
                elif self.processes[n].poll() is not None:
                    raise RuntimeError(self.logs[n].read_text(errors="replace")[-3000:])
            time.sleep(0.05)
        if waiting:
            raise RuntimeError(f"workers {sorted(waiting)} not ready after {READY_TIMEOUT}s")

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def make_companies(run: str, count: int) -> list:
    """``count`` companies, each a sandbox group with the app."""
    from maestrano_accounts.models import Company
    from maestrano_sandbox.models import Group, RegisteredApp

    app = RegisteredApp.objects.get(api_id=API_ID)
    companies = []
    for n in range(count):
        uid = f"cld-{run}-{n:03d}"
        Group.objects.create(uid=uid, name=f"Scale {run} {n}").apps.add(app)
        companies.append(
            Company.objects.create(preset="maestrano", group_uid=uid, name=f"Scale {run} {n}")
        )
    return companies


def queue_work(companies: list, records: int) -> dict:
    """The outbox and inbox work of every company; returns what the end state must be."""
    from django.db import transaction

    from crm.models import Organization
    from maestrano_integration.conf import get_preset
    from maestrano_sync.notifications import receive_notification

    preset = get_preset("maestrano")
    pushed = max(1, records // 4)
    pulled = max(1, records // 2)
    expected: dict = {"organizations": {}, "people": {}}
    for company in companies:
        with transaction.atomic():
            organizations = [
                Organization.objects.create(company=company, name=f"org {n} v1")
                for n in range(pushed)
            ]
        with transaction.atomic():
            for n, organization in enumerate(organizations):
                organization.name = f"org {n} v2"
                organization.save()
        expected["organizations"][company.pk] = {o.pk: o.name for o in organizations}
        ids = [secrets.token_hex(8) for _ in range(pulled)]
        for version, stamp in (("v1", "2026-01-01T00:00:00Z"), ("v2", "2026-01-02T00:00:00Z")):
            body = {
                "people": [
                    {
                        "id": connec_id,
                        "group_id": company.group_uid,
                        "first_name": f"person {n}",
                        "last_name": version,
                        "updated_at": stamp,
                    }
                    for n, connec_id in enumerate(ids)
                ]
            }
            receive_notification(preset=preset, body=json.dumps(body).encode())
        expected["people"][company.pk] = {connec_id: "v2" for connec_id in ids}
    return expected


def pending(companies: list) -> int:
    from maestrano_sync.models import InboxEntry, OutboxEntry

    ids = [c.pk for c in companies]
    outbox = OutboxEntry.objects.filter(
        company_id__in=ids, status=OutboxEntry.Status.PENDING
    ).count()
    inbox = InboxEntry.objects.filter(
        company_id__in=ids,
        status__in=[InboxEntry.Status.PENDING, InboxEntry.Status.PROCESSING],
    ).count()
    return outbox + inbox


def check(companies: list, expected: dict) -> tuple[int, int]:
    """(duplicates, order violations) of the end state."""
    from django.db.models import Count

    from crm.models import Organization, Person
    from maestrano_sandbox.models import ConnecRecord
    from maestrano_sync.models import IdMap

    duplicates = violations = 0
    for company in companies:
        remote = list(
            ConnecRecord.objects.filter(group__uid=company.group_uid, entity="organizations")
        )
        wanted = expected["organizations"][company.pk]
        duplicates += max(0, len(remote) - len(wanted))
        names = sorted(record.data.get("name", "") for record in remote)
        violations += sum(1 for name in names if not name.endswith(" v2"))
        violations += max(0, len(wanted) - len(remote))  # never pushed
        local = Organization.objects.filter(company=company)
        violations += sum(1 for o in local if o.name != wanted.get(o.pk))
        people = list(Person.objects.filter(company=company))
        pulled = expected["people"][company.pk]
        duplicates += max(0, len(people) - len(pulled))
        violations += sum(1 for p in people if p.last_name != "v2")
        violations += max(0, len(pulled) - len(people))
        duplicates += sum(
            row["n"] - 1
            for row in IdMap.objects.filter(company=company)
            .values("entity", "object_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
    return duplicates, violations


def run_round(
    *,
    workers: int,
    companies: int,
    records: int,
    env: dict,
    log_dir: Path,
    broker: str,
    timeout: float,
) -> dict:
    flush_broker(broker)
    run = f"w{workers}-{secrets.token_hex(2)}"
    harness.progress(f"{workers} worker(s): queueing {companies} x {records} changes...")
    made = make_companies(run, companies)
    expected = queue_work(made, records)
    total = companies * records
    with Workers(workers, env=env, log_dir=log_dir) as pool:
        pool.wait_ready()
        started = time.perf_counter()
        deadline = started + timeout
        while pending(made) and time.perf_counter() < deadline:
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
    left = pending(made)
    duplicates, violations = check(made, expected)
    harness.progress(f"  {elapsed:.2f}s, {left} entries left (worker logs in {log_dir})")
    return {
        "seconds": elapsed,
        "records_per_s": total / elapsed,
        "left": left,
        "duplicates": duplicates,
        "order_violations": violations,
    }


def main() -> None:
    parser = harness.parser(__doc__, records=200, repeat=None)
    parser.add_argument("--companies", type=int, default=20)
    parser.add_argument("--broker", default=DEFAULT_BROKER)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per round at most")
    parser.set_defaults(db="postgresql")
    args = parser.parse_args()
    if args.serve:
        harness.serve_runserver(args.serve)
        return
    var_dir = harness.setup(
        db=args.db,
        pg_name=PG_NAME,
        prefix="bench-scale-",
        extra_env={"CELERY_BROKER_URL": args.broker},
    )
    from django.db import connections

    from maestrano_sandbox.models import RegisteredApp

    RegisteredApp.objects.create(api_id=API_ID, api_key=API_KEY, app_host="http://127.0.0.1:9")
    # The sandbox server runs its own notification sender: no broker of ours for it.
    server = harness.Server(
        kind="gunicorn", script=__file__, var_dir=var_dir, env={"CELERY_BROKER_URL": ""}
    )
    results = {}
    logs = Path(var_dir) / "workers"
    logs.mkdir(exist_ok=True)
    with server:
        apply_presets(server.url)
        worker_env = {
            **os.environ,
            **preset_environment(server.url),
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "PYTHONPATH": str(harness.ROOT),
            "LOG_LEVEL": "WARNING",
        }
        connections.close_all()
        for workers in (1, 2):
            results[workers] = run_round(
                workers=workers,
                companies=args.companies,
                records=args.records,
                env=worker_env,
                log_dir=Path(logs),
                broker=args.broker,
                timeout=args.timeout,
            )
    one, two = results[1], results[2]
    print(f"\nScale-out, {args.db}, {args.companies} companies x {args.records} changes")
    print(f"{'workers':<10}{'seconds':>10}{'records/s':>12}{'left':>7}{'dupl.':>7}{'order':>7}")
    for workers, result in results.items():
        print(
            f"{workers:<10}{result['seconds']:>10.2f}{result['records_per_s']:>12.1f}"
            f"{result['left']:>7}{result['duplicates']:>7}{result['order_violations']:>7}"
        )
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    harness.emit(
        {
            "db": args.db,
            "companies": args.companies,
            "records": args.records,
            "workers_1_records_per_s": round(one["records_per_s"], 1),
            "workers_2_records_per_s": round(two["records_per_s"], 1),
            "speedup": round(two["records_per_s"] / one["records_per_s"], 2),
            "duplicates": one["duplicates"] + two["duplicates"],
            "order_violations": one["order_violations"] + two["order_violations"],
            "entries_left": one["left"] + two["left"],
        }
    )


if __name__ == "__main__":
    main()
