"""``round2``, the reports' fast rounding to the fen, is ``round(x, 2)`` bit for bit."""

from __future__ import annotations

import math
import random
import struct

from qmtkit.backends.sim.accounts import round2


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _cases() -> list[float]:
    rng = random.Random(20261205)
    out = [0.0, -0.0, 0.004, -0.004, 0.005, -0.005, 0.015, 0.125, 2.675, 1e-300, 5e-324]
    out += [math.inf, -math.inf, 1e13, -1e13, 2.0**40 / 100, 2.0**40 / 100 + 0.005]
    for _ in range(20_000):
        cents = rng.randrange(-(10**12), 10**12)
        # on the fen grid, a hair either side of it, and at or next to a half fen
        for x in (cents / 100, (cents + 0.5) / 100, (cents + rng.random()) / 100):
            out += [x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf)]
        # what reports round: shares x price, cash plus an exact market value
        price = rng.randrange(1, 300_000) / 1000
        out.append(rng.randrange(1, 10**6) * price)
        out.append(rng.randrange(0, 10**10) / 100 + rng.randrange(0, 10**8) * price)
    return out


def test_round2_equals_round_to_two_decimals_bit_for_bit() -> None:
    wrong = [x for x in _cases() if _bits(round2(x)) != _bits(round(x, 2))]
    assert wrong == []


def test_round2_of_nan_is_nan() -> None:
    assert math.isnan(round2(math.nan))
