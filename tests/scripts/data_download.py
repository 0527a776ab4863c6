# The "history download" example of the xtquant skill notes (/work/shared/seeds), unchanged
# code (comments dropped); run it with `qmtkit run`.
# ruff: noqa
# fmt: off
from xtquant import xtdata
import time

code_list = ["000001.SZ"]
period = "1d"

for code in code_list:
    xtdata.download_history_data(code, period=period, incrementally=True)

xtdata.download_financial_data(code_list)
xtdata.download_sector_data()

history_data = xtdata.get_market_data_ex([], code_list, period=period, count=-1)
print(history_data)
