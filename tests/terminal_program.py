"""A program attached to a shared sim:// terminal, driven by the terminal tests over stdin/stdout.

    python terminal_program.py MODE HOME ACCOUNT

Every report the backend delivers to the client is recorded (before the client's own
replay filter), so the tests see exactly what reached the program. After connecting and
opening ACCOUNT it prints ``ready <hosting>``. Then, by MODE:

- ``hold``: waits for ``until N`` on stdin, then until report N has arrived;
- ``burst``: waits for ``go``, buys in a loop (printing ``half`` after 20 orders), rides out
  the loss of its terminal (retrying after the link is back), stops 20 orders after the
  first reconnect and prints ``done <last seq> <disconnects>``; then waits for ``dump``.

Finally it prints ``stream <json list of [seq, encoded item hex]>`` and exits.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import anyio
import msgspec

import qmtkit
from qmtkit.errors import BackendUnavailable
from qmtkit.models import AccountReport

CODE = "600000.SH"


async def main(mode: str, home: str, account_id: str) -> None:
    got: list[AccountReport] = []
    changed = anyio.Event()
    async with qmtkit.connect(home=home) as qk:
        deliver, deliver_many = qk.on_report, qk.on_reports

        def keep(report: AccountReport) -> None:
            nonlocal changed
            if report.account_id == account_id:
                got.append(report)
                changed.set()
                changed = anyio.Event()

        def record(report: AccountReport) -> None:
            keep(report)
            deliver(report)

        def record_many(reports: Sequence[AccountReport]) -> None:
            for report in reports:
                keep(report)
            deliver_many(reports)

        # A sink takes reports one by one or one state change's at once: both are recorded.
        qk.on_report = record  # type: ignore[method-assign]
        qk.on_reports = record_many  # type: ignore[method-assign]
        acct = await qk.account(account_id)
        hosting = int(getattr(qk.backend, "hosting", False))
        stdin = anyio.wrap_file(sys.stdin)
        print(f"ready {hosting}", flush=True)

        async def last_seq_at_least(n: int) -> None:
            with anyio.fail_after(60):
                while not got or got[-1].seq < n:
                    await changed.wait()

        if mode == "hold":
            line = (await stdin.readline()).split()
            await last_seq_at_least(int(line[1]))
        else:
            assert (await stdin.readline()).strip() == "go"
            detail = await qk.instrument(CODE)
            assert detail is not None
            limit = detail.UpStopPrice
            handles = []
            placed = after = 0
            disconnects = reconnects = 0
            reconnected = anyio.Event()

            async def watch() -> None:
                nonlocal disconnects, reconnects, reconnected
                async with qk.connection_changes() as changes:
                    async for state in changes:
                        if not state.connected:
                            disconnects += 1
                        else:
                            reconnects += 1
                            reconnected.set()
                            reconnected = anyio.Event()

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                while after < 20 and placed < 5000:
                    try:
                        handles.append(await acct.buy(CODE, 100, limit))
                    except BackendUnavailable:
                        # Refused before the link came back: wait for the reconnect after it.
                        with anyio.fail_after(60):
                            await reconnected.wait()
                        continue
                    placed += 1
                    if placed == 20:
                        print("half", flush=True)
                    if disconnects:
                        after += 1
                    await anyio.sleep(0)
                tg.cancel_scope.cancel()
            with anyio.fail_after(60):
                for handle in handles:
                    await handle
            print(f"done {acct.last_seq} {disconnects}", flush=True)
            assert (await stdin.readline()).strip() == "dump"
        stream = [[r.seq, msgspec.msgpack.encode(r.item).hex()] for r in got]
        print("stream " + json.dumps(stream), flush=True)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
