# The "VIP server" example of the xtquant skill notes (/work/shared/seeds), unchanged code
# (comments dropped); with qmtkit, listen() serves the backend through the gateway.
# ruff: noqa
# fmt: off
from xtquant import xtdatacenter as xtdc
from xtquant import xtdata

xtdc.set_token('这里输入你的token')

addr_list = [
    '115.231.218.73:55310',
    '115.231.218.79:55310',
    '42.228.16.211:55300',
    '42.228.16.210:55300'
]
xtdc.set_allow_optmize_address(addr_list)

xtdc.set_kline_mirror_enabled(True)

xtdc.init()
port = xtdc.listen(port=58621)
xtdata.connect(port=port)

print('连接成功')
xtdata.run()
