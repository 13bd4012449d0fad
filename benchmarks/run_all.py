"""Run every benchmark one after the other and collect their headline figures.

    python benchmarks/run_all.py                    # SQLite, 10k records
    python benchmarks/run_all.py --db postgresql --records 100000

Each benchmark is a separate process (fresh databases, its own memory
figures) that prints its own table; this script relays them and ends with one
JSON object: ``{"<benchmark>": <its JSON line>, ...}``. A benchmark that fails
is reported with its exit code and makes this script fail too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks(args: argparse.Namespace) -> dict[str, list[str]]:
    records = ["--records", str(args.records), "--db", args.db]
    names = {
        "sso_consume": [],
        "initial_import": records,
        "sync": records,
        "sandbox_write": ["--records", str(min(args.records, 5000)), "--db", args.db],
    }
    if args.db == "postgresql":
        # Separate worker processes and Redis (127.0.0.1:6379): PostgreSQL only.
        names["scale"] = ["--companies", "20", "--records", "200"]
    return names


def run(name: str, arguments: list[str]) -> dict | None:
    print(f"\n===== {name} {' '.join(arguments)}", flush=True)
    process = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py"), *arguments],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    print(process.stdout, end="", flush=True)
    if process.returncode != 0:
        print(f"{name} failed with exit code {process.returncode}", file=sys.stderr)
        return None
    lines = process.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--only", nargs="*", help="names of the benchmarks to run")
    args = parser.parse_args()
    results: dict[str, dict | None] = {}
    for name, arguments in benchmarks(args).items():
        if args.only and name not in args.only:
            continue
        results[name] = run(name, arguments)
    print(json.dumps(results))
    return 0 if all(result is not None for result in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
