"""Two workers parking the same records of one company at the same moment, in opposite
orders, never deadlock (PostgreSQL).

The webhook, the inbox and the import park through
:func:`maestrano_sync.services.park_records`; two of them may park records that overlap
(a notification delivered twice, an import and a notification of the same record). Each
takes row locks as it goes: the rows it counts again (``UPDATE``) and the rows it inserts
(the unique constraint on company and fingerprint makes a second inserter of a key wait
for the first). Taken in each caller's order, worker A holding r1 and waiting for r2 while
worker B holds r2 and waits for r1 is a deadlock PostgreSQL ends by failing one of them.
Both must take them in one order, whatever order their records came in.

Each round, both workers park the same records in opposite orders, the first every
other record twice (the two count different amounts on the same rows, so group their
``UPDATE`` statements differently). Django's database instrumentation
(``connection.execute_wrapper``) holds each worker's first statement of the given kind on
the parked rows until the other worker's is there too, so that the two overlap every round
rather than by luck: the inserts of records new that round, or the look-up of records both
count again (parked before by a few notifications, so that the rows' order is not the
records' order).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from maestrano_accounts.models import Company
from maestrano_sync.models import SyncRecordError
from maestrano_sync.services import park_records, parked_record

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serialises writers (one lock per file): no two parkings at once",
)

ROUNDS = 20
RECORDS = 50  # each round's


def parked(company: Company, connec_ids: list[str]) -> None:
    park_records(
        rows=[
            parked_record(
                company_id=company.pk,
                entity="organizations",
                connec_id=connec_id,
                reason="name: required",
                data={"id": connec_id},
            )
            for connec_id in connec_ids
        ]
    )


def worker_list(connec_ids: list[str], *, worker: int) -> list[str]:
    """What one worker parks: ``connec_ids`` in its own order (the second worker's
    reversed), the first worker every other record twice (the two count different amounts
    on the same rows)."""
    if worker == 1:
        return connec_ids[::-1]
    return [twice for connec_id in connec_ids[::2] for twice in (connec_id, connec_id)] + [
        connec_id for connec_id in connec_ids[1::2]
    ]


@pytest.mark.parametrize(
    ("parked_before", "statement"),
    [(False, "INSERT"), (True, "SELECT")],
    ids=["new-records", "parked-before"],
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_parking_the_same_records_in_opposite_orders_never_deadlock(
    parked_before, statement
):
    company = Company.objects.create(preset="maestrano", group_uid="cld-park", name="Park")
    rounds = [[f"r{number}-{n}" for n in range(RECORDS)] for number in range(ROUNDS)]
    parkings: Counter[str] = Counter()
    if parked_before:  # by a few notifications each: rows in no order of their own
        for connec_ids in rounds:
            for part in range(4):
                parked(company, connec_ids[part::4])
            parkings.update(connec_ids)
    together = threading.Barrier(2, timeout=30)
    table = f'"{SyncRecordError._meta.db_table}"'
    errors: list[BaseException] = []
    counted = threading.Lock()

    def park(worker: int) -> None:
        met: list[bool] = []

        def meet(execute, sql, params, many, context):
            if not met and sql.startswith(statement) and table in sql:
                met.append(True)  # once a round: a retry goes on alone
                together.wait()
            return execute(sql, params, many, context)

        try:
            with connections["default"].execute_wrapper(meet):
                for connec_ids in rounds:
                    listed = worker_list(connec_ids, worker=worker)
                    met.clear()
                    parked(company, listed)
                    with counted:
                        parkings.update(listed)
        except BaseException as error:  # reported by the test's thread
            errors.append(error)
            together.abort()
        finally:
            connections.close_all()

    workers = [threading.Thread(target=park, args=(n,)) for n in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)

    assert not errors, errors
    rows = SyncRecordError.objects.filter(company=company).values_list("connec_id", "times_seen")
    assert rows.count() == ROUNDS * RECORDS  # each record parked once
    assert dict(rows) == dict(parkings)
