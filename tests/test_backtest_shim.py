"""An unchanged xtquant script runs as a backtest: ``qmtkit run --backend backtest://...``.

Callbacks fire bar by bar in virtual time, orders placed from a callback fill at the next
open, and ``xtdata.run()`` returns when the replay has ended.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qmtkit.data.cache import Cache
from support.history import FLAT, RISING, A, B
from support.history import daily_bars as _bars

SCRIPT = f'''
from xtquant import xtconstant, xtdata
from xtquant.xttrader import XtQuantTrader, XtQuantTraderCallback
from xtquant.xttype import StockAccount

class Callback(XtQuantTraderCallback):
    def on_stock_trade(self, trade):
        print("trade", trade.stock_code, trade.traded_volume, trade.traded_price, flush=True)

trader = XtQuantTrader("/tmp/unused", 1)
trader.register_callback(Callback())
trader.start()
assert trader.connect() == 0
account = StockAccount("bt")
trader.subscribe(account)

def on_bars(datas):
    for code, bars in datas.items():
        bar = bars[-1]
        print("bar", code, bar["time"], bar["close"], flush=True)
        if code == "{A}" and bar["close"] < 11:
            trader.order_stock(account, code, xtconstant.STOCK_BUY, 100,
                               xtconstant.FIX_PRICE, 11.0, "s", "r")

xtdata.subscribe_quote("{A}", period="1d", count=0, callback=on_bars)
xtdata.run()
print("positions", [(p.stock_code, p.volume) for p in trader.query_stock_positions(account)])
print("done")
'''

RUN = (
    "import sys; from qmtkit.compat.runner import run_script; "
    "sys.exit(run_script(sys.argv[1], [], backend=sys.argv[2]))"
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Cache(tmp_path).write_bars("1d", {A: _bars(RISING), B: _bars(FLAT)})
    return tmp_path


def run(home: Path, tmp_path: Path, source: str = SCRIPT) -> list[str]:
    script = tmp_path / "script.py"
    script.write_text(source)
    url = f"backtest://?start=20240102&end=20240109&codes={A},{B}&home={home}"
    env = {k: v for k, v in os.environ.items() if k != "QMTKIT_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(script), url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_an_xtquant_script_backtests_bar_by_bar_and_run_returns_at_the_end(
    home: Path, tmp_path: Path
) -> None:
    out = run(home, tmp_path)
    bars = [line for line in out if line.startswith("bar ")]
    assert [line.split()[3] for line in bars] == ["10.4", "10.8", "11.2", "11.6", "12.0", "12.4"]
    # Bought on the first two bars (close below 11): filled at the next two opens.
    assert [line for line in out if line.startswith("trade ")] == [
        f"trade {A} 100 10.5",
        f"trade {A} 100 10.9",
    ]
    assert out[-2:] == [f"positions [('{A}', 200)]", "done"]


def test_the_same_script_prints_the_same_lines_every_time(home: Path, tmp_path: Path) -> None:
    assert run(home, tmp_path) == run(home, tmp_path)


LAST_DAY_SCRIPT = f"""
from xtquant import xtdata

def on_bars(datas):
    bar = datas["{A}"][-1]
    print("day", bar["time"], xtdata.get_market_last_trade_date("SH"), flush=True)

xtdata.subscribe_quote("{A}", period="1d", count=0, callback=on_bars)
xtdata.run()
"""


def test_the_last_trading_day_is_the_replay_day_not_the_wall_day(
    home: Path, tmp_path: Path
) -> None:
    out = run(home, tmp_path, LAST_DAY_SCRIPT)
    days = [line.split()[1:] for line in out if line.startswith("day ")]
    assert len(days) == 6
    # Each bar is stamped 00:00 Beijing of its day: the last trading day as of that bar.
    assert all(bar_time == last_day for bar_time, last_day in days), days
