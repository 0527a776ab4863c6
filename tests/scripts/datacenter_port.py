# The "choose a port" example of the xtquant skill notes (/work/shared/seeds), unchanged code
# (comments dropped).
# ruff: noqa
# fmt: off
from xtquant import xtdatacenter as xtdc

xtdc.set_token("你的token")
xtdc.init(False)
port = 58601
xtdc.listen(port=port)
print(f"服务启动，开放端口：{port}")
