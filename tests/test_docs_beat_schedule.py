"""The Celery beat schedule docs/install.md gives adopters is the one the example project
runs and the other guides describe (reconciliation every 15 minutes: docs/sync.md,
docs/operations.md), task by task."""

from __future__ import annotations

import ast

from django.conf import settings

from tests.helpers.adoption import doc_blocks


def documented_schedule() -> dict[str, float]:
    """``{task: seconds}`` of the ``CELERY_BEAT_SCHEDULE`` in the settings block of the guide."""
    code = next(code for first, code in doc_blocks() if first == "# add to mysite/settings.py")
    (assignment,) = [
        node
        for node in ast.parse(code).body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "CELERY_BEAT_SCHEDULE"
    ]
    entries = ast.literal_eval(assignment.value)
    return {entry["task"]: float(entry["schedule"]) for entry in entries.values()}


def test_the_install_guide_schedules_every_task_as_the_example_project_does():
    example = {
        entry["task"]: float(entry["schedule"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }

    assert documented_schedule() == example
