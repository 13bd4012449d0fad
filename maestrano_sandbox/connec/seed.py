"""Deterministic, realistic demo data for a group, written in bulk.

Roughly 20% organizations, 40% people (each working for one organization),
20% items and 20% invoices whose lines reference the items and whose customer
is one of the organizations (and a person of it). The same seed, count and
group give the same records (ids included); only the timestamps follow the clock.
Seeded records notify nobody: they stand for data already in the hub.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from maestrano_sandbox.models import ConnecRecord, Group

from .clock import next_timestamp

SANDBOX_DATABASE = "sandbox"
CHUNK_SIZE = 5000
SHARES = (("organizations", 0.2), ("people", 0.4), ("items", 0.2))

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Amelia",
    "Anastasia",
    "Ben",
    "Chloe",
    "Dexter",
    "Emma",
    "Ethan",
    "Grace",
    "Gretchen",
    "Hugo",
    "Isla",
    "Jack",
    "Liam",
    "Lucy",
    "Mia",
    "Noah",
    "Olivia",
    "Oscar",
    "Priya",
    "Ravi",
    "Sofia",
    "Tom",
    "Yuki",
    "Zoe",
    "Mateo",
    "Aisha",
    "Chen",
    "Leila",
]
LAST_NAMES = [
    "Brekke",
    "Kris",
    "Nguyen",
    "Smith",
    "Jones",
    "Williams",
    "Brown",
    "Taylor",
    "Wilson",
    "Martin",
    "Lee",
    "Walker",
    "Hall",
    "Allen",
    "Young",
    "King",
    "Wright",
    "Lopez",
    "Hill",
    "Scott",
    "Green",
    "Adams",
    "Baker",
    "Nelson",
    "Carter",
    "Mitchell",
    "Patel",
    "Kim",
    "Rossi",
]
TITLES = ("Mr.", "Mrs.", "Ms.", "Dr.")
JOBS = (
    "Chief Executive Officer",
    "Accountant",
    "Sales Manager",
    "Office Manager",
    "Purchasing Officer",
    "Engineer",
    "Consultant",
    "Chief Directives Engineer",
)
COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Oceanic",
    "Pied",
    "Piper",
    "Gringotts",
    "Monarch",
    "Aperture",
    "Black",
    "Mesa",
    "Nakatomi",
    "Sirius",
    "Blue",
    "Sun",
]
COMPANY_SUFFIXES = ("Pty Ltd", "Ltd", "Group", "Holdings", "& Co", "Industries", "Trading")
INDUSTRIES = ("Retail", "Manufacturing", "Consulting", "Hospitality", "Construction", "Software")
CITIES = (
    ("Sydney", "2000", "AU"),
    ("Melbourne", "3000", "AU"),
    ("Brisbane", "4000", "AU"),
    ("Auckland", "1010", "NZ"),
    ("London", "EC1A", "GB"),
    ("Singapore", "018956", "SG"),
)
STREETS = ("George St", "King St", "Queen St", "High St", "Market St", "Collins St", "Bridge Rd")
ITEM_WORDS = [
    "Widget",
    "Gadget",
    "Sprocket",
    "Bracket",
    "Valve",
    "Cable",
    "Panel",
    "Sensor",
    "Hinge",
    "Filter",
    "Bolt",
    "Pump",
    "Lamp",
    "Desk",
    "Chair",
    "Licence",
    "Support",
    "Consulting",
    "Training",
    "Installation",
]
ITEM_ADJECTIVES = ("Small", "Large", "Premium", "Basic", "Steel", "Copper", "Annual", "Monthly")
INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "AUTHORISED", "PAID", "PAID", "VOIDED")


@dataclass
class SeedPlan:
    counts: dict[str, int]

    @classmethod
    def for_total(cls, total: int) -> SeedPlan:
        counts = {entity: int(total * share) for entity, share in SHARES}
        counts["invoices"] = total - sum(counts.values())
        if counts["invoices"] and not counts["items"]:
            counts["items"], counts["invoices"] = 1, counts["invoices"] - 1
        if counts["invoices"] and not counts["organizations"]:
            counts["organizations"], counts["invoices"] = 1, counts["invoices"] - 1
        if counts["people"] and not counts["organizations"]:
            counts["organizations"], counts["people"] = 1, counts["people"] - 1
        return cls(counts=counts)


@dataclass
class SeedResult:
    counts: dict[str, int]
    elapsed: float = 0.0
    group_created: bool = False


@dataclass
class Generator:
    """Builds unsaved records in a fixed order from one seeded random generator."""

    group: Group
    rng: random.Random
    start: dt.datetime
    currency: str
    step: dt.timedelta = dt.timedelta(microseconds=10)
    issued: int = 0
    code_offsets: dict[str, int] = field(default_factory=dict)
    organizations: list[str] = field(default_factory=list)
    people_by_organization: dict[str, list[str]] = field(default_factory=dict)
    items: list[tuple[str, float]] = field(default_factory=list)

    def new_record(self, entity: str, data: dict[str, Any]) -> ConnecRecord:
        stamp = self.start + self.step * self.issued
        self.issued += 1
        return ConnecRecord(
            uid=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            group=self.group,
            entity=entity,
            data=data,
            created_at=stamp,
            updated_at=stamp,
        )

    def code(self, prefix: str, entity: str, index: int) -> str:
        return f"{prefix}{self.code_offsets.get(entity, 0) + index + 1}"

    def address(self) -> dict[str, Any]:
        city, postal_code, country = self.rng.choice(CITIES)
        line1 = f"{self.rng.randint(1, 400)} {self.rng.choice(STREETS)}"
        return {
            "billing": {
                "line1": line1,
                "city": city,
                "postal_code": postal_code,
                "country": country,
            }
        }

    def organization(self, index: int) -> ConnecRecord:
        rng = self.rng
        words = (rng.choice(COMPANY_WORDS), rng.choice(COMPANY_WORDS), rng.choice(COMPANY_SUFFIXES))
        name = " ".join(words)
        domain = name.split()[0].lower() + str(index)
        is_supplier = rng.random() < 0.3
        record = self.new_record(
            "organizations",
            {
                "code": self.code("OR", "organizations", index),
                "name": name,
                "status": "ACTIVE",
                "industry": rng.choice(INDUSTRIES),
                "is_customer": not is_supplier or rng.random() < 0.5,
                "is_supplier": is_supplier,
                "email": {"address": f"accounts@{domain}.example"},
                "phone": {"landline": f"+61 2 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"},
                "website": {"url": f"https://www.{domain}.example"},
                "address": self.address(),
            },
        )
        self.organizations.append(str(record.uid))
        return record

    def person(self, index: int) -> ConnecRecord:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        organization = self.organizations[index % len(self.organizations)]
        record = self.new_record(
            "people",
            {
                "code": self.code("PE", "people", index),
                "status": "ACTIVE",
                "title": rng.choice(TITLES),
                "first_name": first,
                "last_name": last,
                "job_title": rng.choice(JOBS),
                "email": {"address": f"{first}.{last}.{index}@example.com".lower()},
                "phone": {"mobile": f"+61 4{rng.randint(10, 99)} {rng.randint(100, 999)} 000"},
                "organization_id": organization,
            },
        )
        self.people_by_organization.setdefault(organization, []).append(str(record.uid))
        return record

    def item(self, index: int) -> ConnecRecord:
        rng = self.rng
        price = round(rng.uniform(5, 500), 2)
        record = self.new_record(
            "items",
            {
                "code": self.code("IT", "items", index),
                "name": f"{rng.choice(ITEM_ADJECTIVES)} {rng.choice(ITEM_WORDS)}",
                "description": "Demo item",
                "status": "ACTIVE",
                "sale_price": {"net_amount": price, "currency": self.currency},
                "purchase_price": {"net_amount": round(price * 0.6, 2), "currency": self.currency},
            },
        )
        self.items.append((str(record.uid), price))
        return record

    def invoice(self, index: int) -> ConnecRecord:
        rng = self.rng
        organization = rng.choice(self.organizations)
        people = self.people_by_organization.get(organization)
        day = dt.date(2016, 1, 1) + dt.timedelta(days=rng.randint(0, 3000))
        lines, total = [], 0.0
        for number in range(1, rng.randint(1, 4) + 1):
            item_id, price = rng.choice(self.items)
            quantity = rng.randint(1, 10)
            total += quantity * price
            lines.append(
                {
                    "line_number": number,
                    "description": f"Line {number}",
                    "quantity": quantity,
                    "unit_price": {"net_amount": price},
                    "total_price": {"net_amount": round(quantity * price, 2)},
                    "item_id": item_id,
                }
            )
        record = self.new_record(
            "invoices",
            {
                "code": self.code("IN", "invoices", index),
                "type": "CUSTOMER" if rng.random() < 0.8 else "SUPPLIER",
                "status": rng.choice(INVOICE_STATUSES),
                "transaction_number": f"INV-{self.code_offsets.get('invoices', 0) + index + 1:06d}",
                "transaction_date": f"{day.isoformat()}T00:00:00Z",
                "due_date": f"{(day + dt.timedelta(days=30)).isoformat()}T00:00:00Z",
                "currency": self.currency,
                "organization_id": organization,
                "person_id": rng.choice(people) if people else None,
                "lines": lines,
                "total_amount": round(total, 2),
            },
        )
        # Line ids derived from the record's (the random stream stays as it was).
        for line in lines:
            line["id"] = str(uuid.uuid5(record.uid, f"line-{line['line_number']}"))
        return record


def ensure_group(*, group_uid: str) -> tuple[Group, bool]:
    return Group.objects.get_or_create(
        uid=group_uid, defaults={"name": f"Demo company {group_uid}"}
    )


def generate(generator: Generator, plan: SeedPlan) -> Iterator[ConnecRecord]:
    """References need their targets first: organizations, people, items, then invoices."""
    builders: dict[str, Callable[[int], ConnecRecord]] = {
        "organizations": generator.organization,
        "people": generator.person,
        "items": generator.item,
        "invoices": generator.invoice,
    }
    for entity in ("organizations", "people", "items", "invoices"):
        for index in range(plan.counts.get(entity, 0)):
            yield builders[entity](index)


def seed_group(
    *,
    group: Group,
    total: int,
    seed: int = 1,
    progress: Callable[[int], object] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> SeedResult:
    """Add ``total`` records to ``group`` with ``bulk_create`` in chunks, one transaction each."""
    plan = SeedPlan.for_total(total)
    existing = {
        entity: ConnecRecord.objects.filter(group=group, entity=entity).count()
        for entity in plan.counts
    }
    # Seeded timestamps sit just before now, so later writes are newer.
    start = timezone.now() - dt.timedelta(microseconds=10) * (total + 1)
    generator = Generator(
        group=group,
        # The group and what it holds are mixed in: seeding again adds new records
        # instead of colliding with the ids of the first run.
        rng=random.Random(f"{seed}:{group.uid}:{sum(existing.values())}"),  # noqa: S311
        start=start,
        currency=group.currency or "AUD",
        code_offsets=existing,
    )
    chunk: list[ConnecRecord] = []
    for record in generate(generator, plan):
        chunk.append(record)
        if len(chunk) >= chunk_size:
            write_chunk(chunk, progress)
            chunk = []
    if chunk:
        write_chunk(chunk, progress)
    next_timestamp()  # keep the clock ahead of the seeded stamps
    return SeedResult(counts=plan.counts)


def write_chunk(chunk: list[ConnecRecord], progress: Callable[[int], object] | None) -> None:
    with transaction.atomic(using=SANDBOX_DATABASE):
        ConnecRecord.objects.bulk_create(chunk, batch_size=1000)
    if progress is not None:
        progress(len(chunk))
