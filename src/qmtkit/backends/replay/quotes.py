"""Which of a replay step's records each quote subscription gets.

Each subscription takes the records of its own codes, in the step's order (code order). A
strategy that subscribes code by code (one task per code) has as many subscriptions as codes:
picking each one's records by testing every record of the step cost subscriptions x records
per step. Here a subscription knows its codes' places in the replay's code order, and a step
of bars finds each code's record once, so each subscription costs what it takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt


class _Record(Protocol):
    @property
    def stock_code(self) -> str: ...


R = TypeVar("R", bound=_Record)


@dataclass
class QuoteSub:
    """One quote subscription of a replay: its id and codes (empty: every replayed code)."""

    sub_id: int
    codes: frozenset[str]
    #: The places of ``codes`` in the replay's code order, ascending.
    positions: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, sub_id: int, codes: frozenset[str], code_index: Mapping[str, int]) -> QuoteSub:
        """A subscription to ``codes`` (each one in ``code_index``, the replay's code order)."""
        return cls(sub_id, codes, sorted(code_index[c] for c in codes))


def split_step(
    items: list[R],
    subs: Iterable[QuoteSub],
    places: npt.NDArray[np.int64] | None,
    *,
    aligned: bool = False,
) -> Iterator[tuple[QuoteSub, list[R]]]:
    """``(subscription, its records)`` for each of ``subs``, records in ``items``' order.

    ``items`` are a step's records in code order; ``places`` the code place of each of them
    (None: not known, as for a step of ticks, whose snapshots need not match the timeline
    one for one). ``aligned``: ``items`` holds one record of every code, in code order.
    Without places, or with a code twice in the step, each subscription tests every record.
    """
    slots: dict[int, int] | None = None
    general = not aligned and (places is None or len(places) != len(items))
    for sub in subs:
        if not sub.codes:
            yield sub, items
            continue
        if not general and not aligned and slots is None:
            assert places is not None
            slots = dict(zip(places.tolist(), range(len(items)), strict=True))
            general = len(slots) != len(items)  # a code twice in the step
        if general:
            codes = sub.codes
            yield sub, [r for r in items if r.stock_code in codes]
        elif aligned:
            yield sub, [items[i] for i in sub.positions]
        else:
            assert slots is not None
            found = slots.get
            yield sub, [items[j] for i in sub.positions if (j := found(i)) is not None]


__all__ = ["QuoteSub", "split_step"]
