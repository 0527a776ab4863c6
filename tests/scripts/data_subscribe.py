# The "subscribe with a callback" example of the xtquant skill notes (/work/shared/seeds),
# unchanged code (comments dropped); it blocks in xtdata.run() until Ctrl-C.
# ruff: noqa
# fmt: off
from xtquant import xtdata

code_list = ["000001.SZ"]
period = "1d"

def on_data(data):
    code_list = list(data.keys())
    kline = xtdata.get_market_data_ex([], code_list, period=period)
    print(kline)

for code in code_list:
    xtdata.subscribe_quote(code, period=period, count=-1, callback=on_data)

xtdata.run()
