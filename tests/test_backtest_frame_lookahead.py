"""The cross-sectional form's step frame shows its step and nothing later.

A step's frame is a zero-copy slice of one frame of the whole replay (built once: a copy per
step would cost about what the rest of a step costs). These tests pin that no later record
is reachable through what the frame hands out: its rows, its NumPy values and its Arrow
export, whose buffers must end at the step's last record.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.data.cache import Cache
from support.history import DAYS, FLAT, RISING, A, B
from support.history import daily_bars as _bars

URL = f"backtest://?start=20240102&end=20240109&codes={A},{B}"


def write(home: Path) -> None:
    Cache(home).write_bars("1d", {A: _bars(RISING), B: _bars(FLAT)})


async def test_each_frame_holds_only_its_own_steps_records(tmp_path: Path) -> None:
    write(tmp_path)
    seen: list[list[int]] = []

    def on_bars(frame: pl.DataFrame, ctx: BarContext) -> None:
        assert frame["time"].dt.epoch("ms").max() <= ctx.now()
        seen.append(frame["time"].dt.epoch("ms").unique().to_list())

    await run_backtest(URL, on_bars=on_bars, home=tmp_path)
    assert len(seen) == len(DAYS)
    assert all(len(times) == 1 for times in seen)


async def test_no_later_record_is_reachable_through_the_frames_arrow_buffers(
    tmp_path: Path,
) -> None:
    write(tmp_path)
    reach: list[tuple[str, int, int]] = []  # (column, records the buffers reach, records so far)
    steps = 0

    def on_bars(frame: pl.DataFrame, ctx: BarContext) -> None:
        nonlocal steps
        steps += 1
        so_far = steps * 2  # both codes have a bar every day
        table = frame.to_arrow()
        for name in table.column_names:
            if name == "code":  # dictionary-encoded: its values are the code list, not records
                continue
            for chunk in table.column(name).chunks:
                data = chunk.buffers()[-1]
                width = chunk.type.bit_width // 8 if chunk.type.bit_width >= 8 else 0
                if width:
                    reach.append((name, data.size // width, so_far))
                # The NumPy view is the step's rows only.
                assert len(frame[name].to_numpy()) == frame.height

    await run_backtest(URL, on_bars=on_bars, home=tmp_path)
    assert reach
    late = [(name, n, limit) for name, n, limit in reach if n > limit]
    assert late == []
