"""The differentiated individual dividend tax, collected when shares are sold (FIFO by lot).

Since 2015-09-08 an individual's dividends from A shares are taxed by how long the shares were
held: at most one month 20 %, more than one month up to one year 10 %, more than a year
nothing. Nothing is withheld when the dividend is paid; the tax falls due when the shares are
sold, the oldest bought shares counting as sold first. The holding period runs from the day
the shares were bought to the day before the sale, so a lot bought on D is taxed 20 % if sold
on or before D plus one calendar month, 10 % if sold on or before D plus one year.

Taxed: cash dividends (``interest``) and bonus shares paid out of profits (``stockBonus``) at
their par value of 1 CNY a share; shares transferred from the capital reserve
(``stockGift``) are not income. Bonus and transferred shares join the lot they were paid on
(same purchase day). Pure state, fed by the backtest with its fills and ex-rights days.
"""

from __future__ import annotations

import calendar
import math
from collections import deque
from dataclasses import dataclass
from typing import Final

#: The par value a bonus share is taxed at (CNY).
PAR: Final = 1.0


def add_months(day: int, months: int) -> int:
    """``day`` (``YYYYMMDD``) plus whole calendar months, the day clipped to the month's end."""
    y, m, d = day // 10000, day // 100 % 100, day % 100
    total = y * 12 + (m - 1) + months
    y, m = divmod(total, 12)
    m += 1
    return y * 10000 + m * 100 + min(d, calendar.monthrange(y, m)[1])


def tax_rate(bought: int, sold: int) -> float:
    """The rate on dividends of shares bought on ``bought`` and sold on ``sold``."""
    if sold <= add_months(bought, 1):
        return 0.20
    if sold <= add_months(bought, 12):
        return 0.10
    return 0.0


@dataclass
class Lot:
    """Shares bought on one day, and the taxable dividends they received (CNY, untaxed)."""

    day: int
    shares: int
    income: float = 0.0


class DividendTax:
    """Lots per (account, code) and the tax each sale owes."""

    def __init__(self) -> None:
        self._lots: dict[tuple[str, str], deque[Lot]] = {}
        #: Tax collected per account (CNY).
        self.paid: dict[str, float] = {}

    def bought(self, account_id: str, code: str, day: int, shares: int) -> None:
        """A buy fill of ``shares`` on ``day``."""
        lots = self._lots.setdefault((account_id, code), deque())
        if lots and lots[-1].day == day:
            lots[-1].shares += shares
        else:
            lots.append(Lot(day, shares))

    def ex_rights(self, code: str, interest: float, bonus: float, gift: float) -> None:
        """An ex-date of ``code``: every lot receives its dividends and new shares.

        New shares per lot are rounded down and the remainder of the holding's rounded-down
        total goes to its newest lot, so the lots add up to the broker's position.
        """
        for (_, c), lots in self._lots.items():
            if c != code or not lots:
                continue
            held = sum(lot.shares for lot in lots)
            extra = math.floor(held * (bonus + gift) + 1e-9)
            given = 0
            for lot in lots:
                lot.income += lot.shares * (interest + bonus * PAR)
                add = math.floor(lot.shares * (bonus + gift) + 1e-9)
                lot.shares += add
                given += add
            lots[-1].shares += extra - given

    def sold(self, account_id: str, code: str, day: int, shares: int) -> float:
        """A sell fill of ``shares`` on ``day``: the tax it owes (CNY, rounded to the cent)."""
        lots = self._lots.get((account_id, code))
        tax = 0.0
        left = shares
        while lots and left > 0:
            lot = lots[0]
            take = min(left, lot.shares)
            part = lot.income * take / lot.shares
            tax += part * tax_rate(lot.day, day)
            lot.income -= part
            lot.shares -= take
            left -= take
            if lot.shares == 0:
                lots.popleft()
        # Shares no lot accounts for (there should be none) owe nothing.
        owed = math.floor(tax * 100 + 0.5 + 1e-9) / 100
        if owed > 0:
            self.paid[account_id] = self.paid.get(account_id, 0.0) + owed
        return owed


__all__ = ["PAR", "DividendTax", "Lot", "add_months", "tax_rate"]
