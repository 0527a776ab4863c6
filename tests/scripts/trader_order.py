# The "trading: initialise and order" example of the xtquant skill notes (/work/shared/seeds),
# unchanged code (comments dropped).
# ruff: noqa
# fmt: off
from xtquant.xttrader import XtQuantTrader, XtQuantTraderCallback
from xtquant.xttype import StockAccount
from xtquant import xtconstant

class MyXtQuantTraderCallback(XtQuantTraderCallback):
    def on_stock_order(self, order):
        print("委托回报:", order.stock_code, order.order_status)

    def on_stock_trade(self, trade):
        print("成交回报:", trade.stock_code, trade.order_id)

    def on_order_error(self, order_error):
        print("委托失败:", order_error.error_msg)

path = 'D:\\迅投极速交易终端\\userdata_mini'
session_id = 123456
xt_trader = XtQuantTrader(path, session_id)

acc = StockAccount('1000000365')

callback = MyXtQuantTraderCallback()
xt_trader.register_callback(callback)

xt_trader.start()
connect_result = xt_trader.connect()
subscribe_result = xt_trader.subscribe(acc)

stock_code = '600000.SH'
order_id = xt_trader.order_stock(
    acc,
    stock_code,
    xtconstant.STOCK_BUY,
    200,
    xtconstant.FIX_PRICE,
    10.5
)
print(f"下单成功，订单号: {order_id}")
