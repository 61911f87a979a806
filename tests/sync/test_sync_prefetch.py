"""The next page read ahead in a thread: pages in order, errors raised in the caller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routing_core.errors import LeadgateError
from sync.run import _Prefetch


def _pages() -> Iterator[int]:
    yield 1
    yield 2
    raise LeadgateError("the CRM went away", fix="retry")


def test_pages_in_order_then_end_then_error_in_the_caller() -> None:
    pages = _pages()
    assert _Prefetch(pages).result() == 1
    ahead = _Prefetch(pages)
    ahead.wait()
    assert ahead.result() == 2
    with pytest.raises(LeadgateError, match="went away"):
        _Prefetch(pages).result()
    assert _Prefetch(iter([])).result() is None
