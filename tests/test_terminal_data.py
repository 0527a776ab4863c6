"""Data never waits on trading: many programs read and download through one terminal at once."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import numpy as np

import qmtkit
from qmtkit.data.cache import Cache

CODES = ["600000.SH", "000001.SZ", "300750.SZ"]
START = "20250101"
# Connects (attaching to the test's terminal), waits for "go", downloads, reads, prints rows.
DOWNLOADER = f"""
import sys, anyio, qmtkit

async def main(home):
    async with qmtkit.connect(home=home) as qk:
        print("ready", flush=True)
        sys.stdin.readline()
        await qk.data.download({CODES!r}, "1d", start={START!r})
        await qk.data.download({CODES!r}[:1], "1m", start="20261201")
        frame = await qk.data.bars({CODES!r}, "1d", start={START!r})
        print("rows", frame.height, flush=True)

anyio.run(main, sys.argv[1])
"""


async def test_two_programs_download_the_same_range_at_once_while_a_third_trades(
    tmp_path: Path,
) -> None:
    async with qmtkit.connect(home=tmp_path) as trader:
        acct = await trader.account("data-acct")
        procs = [
            await anyio.open_process([sys.executable, "-c", DOWNLOADER, str(tmp_path)])
            for _ in range(2)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                with anyio.fail_after(90):
                    assert (await proc.stdout.receive()).startswith(b"ready")
            for proc in procs:  # both start downloading at the same moment
                assert proc.stdin is not None
                await proc.stdin.send(b"go\n")
            detail = await trader.instrument(CODES[0])
            assert detail is not None
            handle = await acct.buy(CODES[0], 100, detail.UpStopPrice)  # trading meanwhile
            with anyio.fail_after(30):
                assert (await handle).traded_volume == 100
            outs = []
            for proc in procs:
                assert proc.stdout is not None
                text = b""
                with anyio.fail_after(120):
                    async for chunk in proc.stdout:  # to the end: every line it printed
                        text += chunk
                    assert await proc.wait() == 0
                outs.append([ln.split() for ln in text.decode().splitlines() if ln.strip()][-1])
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
        expected = await trader.data.bars(CODES, "1d", start=START)
    assert outs == [["rows", str(expected.height)]] * 2
    cache = Cache(tmp_path)
    assert cache.verify() == []
    for code in CODES:
        times = cache.arrays("1d", code)["time"]
        assert len(times) > 400 and np.all(np.diff(times) > 0)  # no bar twice, none torn
