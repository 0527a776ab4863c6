# Two XtQuantTrader paths are two independent terminals (paper accounts of their own).
from xtquant import xtconstant
from xtquant.xttrader import XtQuantTrader
from xtquant.xttype import StockAccount

acc = StockAccount("1000000365")
a = XtQuantTrader("/terminals/a/userdata_mini", 1)
b = XtQuantTrader("/terminals/b/userdata_mini", 2)
for t in (a, b):
    t.start()
    assert t.connect() == 0
assert a.subscribe(acc) == 0  # opens the paper account on terminal A only
a.order_stock(acc, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, 10.5)
print("A orders:", len(a.query_stock_orders(acc)))
typo = StockAccount("100000365")  # a digit short: not held, never created
print("typo order:", a.order_stock(typo, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, 10.5))
print("A accounts:", [i.account_id for i in a.query_account_infos()])
print("B orders:", len(b.query_stock_orders(acc)))
a.stop()
a2 = XtQuantTrader("/terminals/a/userdata_mini", 3)
a2.start()
a2.connect()
print("A again:", len(a2.query_stock_orders(acc)))
