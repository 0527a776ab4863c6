"""The shim checks xtdata's arguments with the data layer's own checks, naming its own arguments."""

from __future__ import annotations

import numpy as np
import pytest

from qmtkit.compat import xtdata
from qmtkit.errors import InvalidArgument, InvalidCode


def test_codes_are_normalised_by_the_data_layer_naming_stock_list() -> None:
    assert xtdata._codes(["600000.sh", "600000.SH", "000001.SZ"]) == ["600000.SH", "000001.SZ"]
    with pytest.raises(InvalidCode, match="stock_list must be a code or a list of codes"):
        xtdata._codes(600000)


def test_count_takes_what_the_data_api_takes() -> None:
    assert xtdata._count(np.int64(5)) == 5 and xtdata._count(-1) == -1
    with pytest.raises(InvalidArgument, match="bad count -2"):
        xtdata._count(-2)
    with pytest.raises(InvalidArgument, match="bad count True"):
        xtdata._count(True)


def test_an_empty_dividend_type_means_none_and_a_bad_one_is_named() -> None:
    assert xtdata._adjust("") == "none" and xtdata._adjust("front") == "front"
    with pytest.raises(InvalidArgument, match="bad dividend_type 'forward'"):
        xtdata._adjust("forward")
