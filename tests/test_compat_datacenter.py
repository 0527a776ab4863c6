"""xtdatacenter: settings, and ``listen`` serving the backend to ``xtdata.connect(port=...)``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from qmtkit.compat import xtdata, xtdatacenter
from qmtkit.compat._bridge import bridge
from qmtkit.errors import InvalidArgument, QmtkitError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path))
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    xtdata.enable_hello = False
    try:
        yield tmp_path
    finally:
        xtdata.disconnect()
        xtdatacenter.shutdown()
        xtdatacenter.init_complete = False
        bridge().shutdown()
        xtdata.enable_hello = True


def test_set_data_home_dir_sets_qmtkit_home(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    xtdatacenter.set_data_home_dir(str(target))
    assert os.environ["QMTKIT_HOME"] == str(target.resolve())
    with pytest.raises(InvalidArgument):
        xtdatacenter.set_data_home_dir("")


def test_listen_needs_init_and_a_valid_port(home: Path) -> None:
    with pytest.raises(QmtkitError, match=r"init\(\) first"):
        xtdatacenter.listen("127.0.0.1", 0)
    xtdatacenter.init(False)
    with pytest.raises(InvalidArgument, match="70000"):
        xtdatacenter.listen("127.0.0.1", 70000)


def test_vip_settings_are_accepted(home: Path) -> None:
    xtdatacenter.set_token("a-long-enough-token")
    xtdatacenter.set_allow_optmize_address(["1.2.3.4:55310"])
    xtdatacenter.set_kline_mirror_enabled(True)
    xtdatacenter.set_init_markets(["SH", "SZ"])


def test_xtdata_connects_through_the_port_listen_opened(home: Path) -> None:
    xtdatacenter.set_token("a-long-enough-token")
    xtdatacenter.init()
    ip, port = xtdatacenter.listen("127.0.0.1", 0)
    assert ip == "127.0.0.1" and port > 0
    assert xtdatacenter.get_local_server_port() == port
    conn = xtdata.connect(port=port)
    assert conn.client.info.kind == "remote"
    detail = xtdata.get_instrument_detail("600000.SH")
    assert detail is not None and detail["InstrumentName"] == "浦发银行"
    xtdata.disconnect()
    assert xtdata.connect(port=(ip, port)).client.info.kind == "remote"
