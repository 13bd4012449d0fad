"""Sandbox write benchmark: the emulated Connec!'s batch endpoint, POST and PUT, on its own.

    python benchmarks/sandbox_write.py --records 5000 --db postgresql --repeat 3
    python benchmarks/sandbox_write.py --records 2000 --db sqlite --server runserver

Sets up fresh databases (SQLite files in a temporary directory, or PostgreSQL
databases ``bench_sandbox_write`` and ``..._sandbox`` on 127.0.0.1) and serves
the site from a child process (``--server``, default the production recipe,
see ``benchmarks/harness.py``). Each run writes into a fresh group shared by
the writing app and a peer app subscribed to everything (so every batch also
stores its notification, which the sandbox's sender then POSTs to a sink in this
process). A few untimed batches warm the server up. Then, per run:

* batch POST: N records (20% organizations, 80% people referencing them by
  external id), each carrying the writer's external id, as ``maestrano_sync.push`` sends
  them: ``--batch-size`` ops per ``/batch`` request, ``CONNEC-EXTERNAL-IDS: true``;
* batch PUT: every record changed once more, addressed by its Connec! id;
* single POST: one request per record (``--single-records`` records): the
  endpoint an adopter's own tests hit most;
* bare bulk_create: the same record rows written with ``bulk_create`` straight
  into the sandbox database (no HTTP, no validation, no external ids): the limit.

Prints a table (best and median of ``--repeat`` runs, ratios against bare
``bulk_create``); the last line is one JSON object whose headline is
``sandbox_batch_records_per_s`` (batch POST and PUT records over their time, best run).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import harness

PG_NAME = "bench_sandbox_write"
API_ID = "bench-writer"
API_KEY = "bench-writer-key-" + "x" * 16
PEER_ID = "bench-peer"


class NotificationSink(BaseHTTPRequestHandler):
    """The peer app: answers every notification 204 and counts what it received."""

    received = {"notifications": 0, "bytes": 0}

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        NotificationSink.received["notifications"] += 1
        NotificationSink.received["bytes"] += len(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def start_sink() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotificationSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def setup_groups(repeat: int, *, peer_host: str) -> list[str]:
    """One group per run, used by the writer and by a peer subscribed to every entity."""
    from maestrano_sandbox.models import Group, RegisteredApp

    writer = RegisteredApp.objects.create(
        api_id=API_ID, api_key=API_KEY, app_host="http://127.0.0.1:9"
    )
    peer = RegisteredApp.objects.create(
        api_id=PEER_ID, api_key="peer-key-" + "x" * 16, app_host=peer_host
    )
    uids = []
    for run in range(repeat):
        group = Group.objects.create(uid=f"cld-bench-write-{run}", name=f"Run {run}")
        group.apps.add(writer, peer)
        uids.append(group.uid)
    return uids


def entry(kind: str, n: int) -> dict[str, str]:
    return {"realm": "bench-realm", "provider": API_ID, "id": f"{kind}{n}"}


def create_ops(group_uid: str, records: int, prefix: str = "") -> list[dict[str, Any]]:
    organizations = max(1, records // 5)
    ops = [
        {
            "method": "post",
            "url": f"/api/v2/{group_uid}/organizations",
            "params": {
                "organizations": {
                    "id": [entry(f"{prefix}org", n)],
                    "name": f"Organization {n}",
                    "is_customer": True,
                    "email": {"address": f"org{n}@example.com"},
                    "phone": {"landline": f"+61 2 9000 {n:04d}"},
                    "address": {"billing": {"line1": f"{n} George St", "city": "Sydney"}},
                }
            },
        }
        for n in range(organizations)
    ]
    ops += [
        {
            "method": "post",
            "url": f"/api/v2/{group_uid}/people",
            "params": {
                "people": {
                    "id": [entry(f"{prefix}person", n)],
                    "title": "Mx",
                    "first_name": f"First{n}",
                    "last_name": f"Last{n}",
                    "job_title": "Engineer",
                    "email": {"address": f"person{n}@example.com"},
                    "organization_id": [entry(f"{prefix}org", n % organizations)],
                }
            },
        }
        for n in range(records - organizations)
    ]
    return ops


def update_ops(group_uid: str, created: list[tuple[str, str]]) -> list[dict[str, Any]]:
    field = {"organizations": "name", "people": "last_name"}
    return [
        {
            "method": "put",
            "url": f"/api/v2/{group_uid}/{entity}/{record_id}",
            "params": {entity: {field[entity]: f"Changed {n}"}},
        }
        for n, (entity, record_id) in enumerate(created)
    ]


def send_batches(session, url: str, ops: list[dict], batch_size: int) -> list[dict]:
    results: list[dict] = []
    for start in range(0, len(ops), batch_size):
        response = session.post(
            f"{url}/sandbox/connec/batch",
            data=json.dumps({"sequential": True, "ops": ops[start : start + batch_size]}),
            headers={"Content-Type": "application/json", "CONNEC-EXTERNAL-IDS": "true"},
            timeout=120,
        )
        assert response.status_code == 200, response.text[:500]
        answers = response.json()["results"]
        failed = [r for r in answers if r["status"] >= 300]
        assert not failed, failed[:3]
        results.extend(answers)
    return results


def connec_id(body: dict) -> tuple[str, str]:
    (entity, record), *_ = ((k, v) for k, v in body.items() if isinstance(v, dict))
    return entity, next(e["id"] for e in record["id"] if e["provider"] == "connec")


def phase_batch(
    server: harness.Server, group_uid: str, records: int, batch_size: int
) -> tuple[dict, dict]:
    """Batch POST then batch PUT; wall time, and the server's CPU time, of each."""
    import requests

    with requests.Session() as session:
        session.auth = (API_ID, API_KEY)
        ops = create_ops(group_uid, records)
        cpu = server.cpu_seconds()
        with harness.timed() as post:
            results = send_batches(session, server.url, ops, batch_size)
        post["server_cpu"], cpu = server.cpu_seconds() - cpu, server.cpu_seconds()
        assert sum(r["status"] == 201 for r in results) == records
        created = [connec_id(r["body"]) for r in results]
        with harness.timed() as put:
            send_batches(session, server.url, update_ops(group_uid, created), batch_size)
        put["server_cpu"] = server.cpu_seconds() - cpu
    return {**post, "records": records}, {**put, "records": records}


def warm_up(url: str, group_uid: str, batch_size: int, workers: int) -> None:
    """Untimed: a few batches from several connections, so that every server worker has
    loaded its code and opened its database connections before the timed phases."""
    import requests

    def one(call: int) -> None:
        with requests.Session() as session:
            session.auth = (API_ID, API_KEY)
            send_batches(session, url, create_ops(group_uid, 10, f"w{call}-"), batch_size)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(4 * workers)))


def phase_single(url: str, group_uid: str, records: int) -> dict:
    import requests

    ops = create_ops(group_uid, records)
    with requests.Session() as session:
        session.auth = (API_ID, API_KEY)
        with harness.timed() as single:
            for op in ops:
                response = session.post(
                    f"{url}/sandbox/connec{op['url']}",
                    data=json.dumps(op["params"]),
                    headers={"Content-Type": "application/json", "CONNEC-EXTERNAL-IDS": "true"},
                    timeout=30,
                )
                assert response.status_code == 201, response.text[:500]
    return {**single, "records": records}


def phase_bulk_create(group_uid: str, records: int, batch_size: int) -> dict:
    """The same rows, as the hub stores them, with bulk_create (only the writes timed)."""
    from django.db import transaction

    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord, Group

    group = Group.objects.get(uid=group_uid)
    rows = []
    for op in create_ops(group_uid, records):
        entity, payload = next(iter(op["params"].items()))
        data = {k: v for k, v in payload.items() if k != "id"}
        stamp = next_timestamp()
        rows.append(
            ConnecRecord(group=group, entity=entity, data=data, created_at=stamp, updated_at=stamp)
        )
    with harness.timed() as bulk:
        for start in range(0, len(rows), batch_size):
            with transaction.atomic(using="sandbox"):
                ConnecRecord.objects.bulk_create(rows[start : start + batch_size])
    return {**bulk, "records": records}


def main() -> None:
    parser = harness.parser(__doc__, records=5000, repeat=3, server="gunicorn")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--single-records", type=int, default=200)
    args = parser.parse_args()
    if args.serve:
        harness.serve_runserver(args.serve)
        return
    var_dir = harness.setup(db=args.db, pg_name=PG_NAME, prefix="bench-sandbox-write-")
    groups = setup_groups(args.repeat, peer_host=start_sink())
    singles = [f"{uid}-single" for uid in groups]
    from maestrano_sandbox.models import Group

    for uid in singles:
        group = Group.objects.create(uid=uid, name=uid)
        group.apps.add(*Group.objects.get(uid=groups[0]).apps.all())

    rate = {name: harness.Runs(higher_is_better=True) for name in ("batch", "post", "put")}
    rate.update({name: harness.Runs(higher_is_better=True) for name in ("single", "bulk")})
    # Server CPU milliseconds per record (lower is better).
    server_cpu = {name: harness.Runs() for name in ("post", "put", "batch")}
    server = harness.Server(
        kind=args.server, script=__file__, var_dir=var_dir, threads=args.server_threads
    )
    with server:
        harness.progress("warming up the server...")
        Group.objects.create(uid="cld-bench-warm-up", name="warm-up").apps.add(
            *Group.objects.get(uid=groups[0]).apps.all()
        )
        warm_up(server.url, "cld-bench-warm-up", args.batch_size, server.workers)
        for run, uid in enumerate(groups, start=1):
            harness.progress(f"run {run}/{args.repeat}: batch POST and PUT of {args.records}...")
            post, put = phase_batch(server, uid, args.records, args.batch_size)
            rate["post"].add(post["records"] / post["seconds"])
            rate["put"].add(put["records"] / put["seconds"])
            rate["batch"].add(2 * args.records / (post["seconds"] + put["seconds"]))
            server_cpu["post"].add(post["server_cpu"] / post["records"] * 1000)
            server_cpu["put"].add(put["server_cpu"] / put["records"] * 1000)
            server_cpu["batch"].add(
                (post["server_cpu"] + put["server_cpu"]) / (2 * args.records) * 1000
            )
            harness.progress(f"run {run}/{args.repeat}: {args.single_records} single POSTs...")
            single = phase_single(server.url, singles[run - 1], args.single_records)
            rate["single"].add(single["records"] / single["seconds"])
    for run in range(args.repeat):
        uid = f"cld-bench-bulk-{run}"
        Group.objects.create(uid=uid, name=uid)
        bulk = phase_bulk_create(uid, args.records, args.batch_size)
        rate["bulk"].add(bulk["records"] / bulk["seconds"])

    bulk_best = rate["bulk"].best
    rows = [
        ("batch POST (create, external ids)", rate["post"], server_cpu["post"]),
        ("batch PUT (update by Connec! id)", rate["put"], server_cpu["put"]),
        ("batch POST + PUT", rate["batch"], server_cpu["batch"]),
        ("single POST (1 request per record)", rate["single"], None),
        ("bare bulk_create (no HTTP)", rate["bulk"], None),
    ]
    harness.print_table(
        f"Sandbox writes, {args.db}, {args.records} records, batch size {args.batch_size}, "
        f"{args.repeat} runs, server: {server.describe()}",
        [
            ("phase", 38),
            ("best rec/s", 12),
            ("median", 10),
            ("ms/rec", 9),
            ("vs bulk", 10),
            ("server CPU ms/rec*", 20),
        ],
        [
            (
                name,
                f"{runs.best:.0f}",
                f"{runs.median:.0f}",
                f"{1000 / runs.best:.3f}",
                harness.ratio(bulk_best, runs.best, 1),
                f"{cpu.best:.3f}" if cpu else "",
            )
            for name, runs, cpu in rows
        ],
    )
    print(
        "* the server processes' CPU time per record (best run): steadier than wall time "
        "on a busy machine"
    )
    print(
        f"notifications received by the peer: {NotificationSink.received['notifications']} "
        f"({NotificationSink.received['bytes'] / 1e6:.1f} MB)"
    )
    print(
        "vs bulk: time per record / bare bulk_create's (best runs); "
        f"batch / single POST: {harness.ratio(rate['post'].best, rate['single'].best, 1)}; "
        f"target >= 1000 records/s: {'met' if rate['batch'].best >= 1000 else 'MISSED'}"
    )
    harness.emit(
        {
            "db": args.db,
            "records": args.records,
            "repeat": args.repeat,
            "server": args.server,
            "sandbox_batch_post_records_per_s": round(rate["post"].best, 1),
            "sandbox_batch_put_records_per_s": round(rate["put"].best, 1),
            "sandbox_single_post_records_per_s": round(rate["single"].best, 1),
            "ratio_vs_bulk_create": round(bulk_best / rate["batch"].best, 2),
            "server_cpu_ms_per_record": round(server_cpu["batch"].best, 3),
            "sandbox_batch_records_per_s_median": round(rate["batch"].median, 1),
            "sandbox_batch_records_per_s": round(rate["batch"].best, 1),
        }
    )


if __name__ == "__main__":
    main()
