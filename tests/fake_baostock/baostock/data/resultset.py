"""The result object every query returns: string rows, paged 2,000 at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PER_PAGE = 2000


class ResultData:
    """``error_code``/``error_msg`` strings, ``fields``, and rows read with ``next()`` and
    ``get_row_data()``; a later page is asked of the server when the current one is used up."""

    def __init__(self) -> None:
        self.error_code = "10001001"
        self.error_msg = ""
        self.fields: list[str] = []
        self.data: list[list[str]] = []
        self.cur_row_num = 0
        self.cur_page_num = "1"
        self.per_page_count = str(PER_PAGE)
        self._next_page: Callable[[int], list[list[str]] | None] | None = None

    def next(self) -> bool:
        """True while a row is left (fetching the next page when this one is used up)."""
        if not self.data:
            return False
        if self.cur_row_num < len(self.data):
            return True
        if len(self.data) < PER_PAGE or len(self.data) > PER_PAGE or self._next_page is None:
            return False
        page = int(self.cur_page_num) + 1
        rows = self._next_page(page)
        if rows is None:
            # The real client returns False without touching error_code when a page is lost.
            return False
        self.cur_page_num = str(page)
        self.data = rows
        self.cur_row_num = 0
        return bool(rows)

    def get_row_data(self) -> list[str]:
        """The current row (then moves on); ``[]`` past the end."""
        if self.cur_row_num < len(self.data):
            row = self.data[self.cur_row_num]
            self.cur_row_num += 1
            return row
        return []

    def get_data(self) -> Any:
        """The real package returns a pandas DataFrame; qmtkit never calls this."""
        raise NotImplementedError("the fake serves rows through next()/get_row_data() only")
