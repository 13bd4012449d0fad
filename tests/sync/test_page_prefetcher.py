"""The import's page prefetcher: order, errors, and an entity's end taking no look-ahead."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from maestrano_sync.importer import PagePrefetcher

END = None  # an entity's end: no page


def is_end(item: tuple[str, object]) -> bool:
    return item[1] is END


def two_entities(fetched_people: threading.Event) -> Iterator[tuple[str, object]]:
    """Two pages of organizations and their end, then the people's first page (when the
    thread gets there, ``fetched_people`` is set) and their end."""
    yield "org", 1
    yield "org", 2
    yield "org", END
    fetched_people.set()
    yield "people", 1
    yield "people", END


def test_items_come_out_in_order_with_the_ends_of_entities():
    items = [("org", 1), ("org", 2), ("org", END), ("people", 1), ("people", END)]

    with PagePrefetcher(iter(items), rides_along=is_end) as prefetched:
        assert list(prefetched) == items


def test_the_next_entitys_first_page_is_fetched_while_the_page_before_the_end_is_written():
    # The consumer holds page 1 of the organizations (it is "writing" it); page 2 waits in
    # the queue. An end that took a place of its own would stop the thread there: the
    # people's first page would be fetched only once page 2 is taken.
    fetched_people = threading.Event()

    with PagePrefetcher(two_entities(fetched_people), rides_along=is_end) as prefetched:
        taken = iter(prefetched)
        assert next(taken) == ("org", 1)
        assert fetched_people.wait(timeout=10), "the people's first page waited for page 2"
        assert list(taken) == [("org", 2), ("org", END), ("people", 1), ("people", END)]


def test_without_rides_along_an_end_takes_its_place_in_the_look_ahead():
    fetched_people = threading.Event()

    with PagePrefetcher(two_entities(fetched_people)) as prefetched:
        taken = iter(prefetched)
        assert next(taken) == ("org", 1)
        assert not fetched_people.wait(timeout=0.5)
        assert next(taken) == ("org", 2)
        assert fetched_people.wait(timeout=10)
        assert list(taken) == [("org", END), ("people", 1), ("people", END)]


def test_an_end_waiting_for_the_next_page_is_handed_over_before_that_pages_error():
    def pages() -> Iterator[tuple[str, object]]:
        yield "org", 1
        yield "org", END
        raise ConnectionError("Connec! is down")

    seen = []
    with (
        PagePrefetcher(pages(), rides_along=is_end) as prefetched,
        pytest.raises(ConnectionError, match="down"),
    ):
        for item in prefetched:
            seen.append(item)
    assert seen == [("org", 1), ("org", END)]


def test_a_consumer_that_stops_early_does_not_leave_the_thread_waiting():
    def pages() -> Iterator[tuple[str, object]]:
        for number in range(1, 100):
            yield "org", number
            yield "org", END

    with PagePrefetcher(pages(), rides_along=is_end) as prefetched:
        assert next(iter(prefetched)) == ("org", 1)
    assert not any(thread.name == "connec-prefetch" for thread in threading.enumerate())
