"""Published market closures of the Shanghai, Shenzhen and Beijing stock exchanges, 2005-2026.

Each row is one closure as the exchanges announce it: first day, last day (both ``YYYYMMDD``,
inclusive, weekends inside a range are harmless) and the holiday's name. Weekends are always
closed and A-shares never trade on a weekend make-up working day, so only the weekdays inside
these ranges are holidays. SZ and BJ close on the same days as SH.

Three closures differ from the State Council's public-holiday schedule: the exchanges closed on
2005-02-07/08 and 2006-01-26/27 ahead of the Spring Festival, and on 2024-02-09 (New Year's Eve,
a working day elsewhere).

Past the table, :func:`provisional_closures` computes a year's closures by rule.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from qmtkit.data.lunar import lunar_to_gregorian, qingming

#: First and last calendar day (``YYYYMMDD``) this table is complete for.
KNOWN_FIRST: Final = 20050101
KNOWN_LAST: Final = 20261231

#: Beijing Stock Exchange's first trading day; it has no trading days before it.
BJ_OPENED: Final = 20211115

#: (first day, last day, holiday) of every closure, oldest first.
CLOSURES: Final[tuple[tuple[int, int, str], ...]] = (
    (20050101, 20050103, "New Year"),
    (20050207, 20050215, "Spring Festival"),
    (20050501, 20050507, "Labour Day"),
    (20051001, 20051007, "National Day"),
    (20060101, 20060103, "New Year"),
    (20060126, 20060205, "Spring Festival"),
    (20060501, 20060507, "Labour Day"),
    (20061001, 20061007, "National Day"),
    (20070101, 20070103, "New Year"),
    (20070217, 20070225, "Spring Festival"),
    (20070501, 20070507, "Labour Day"),
    (20071001, 20071007, "National Day"),
    (20071230, 20080101, "New Year"),
    (20080206, 20080212, "Spring Festival"),
    (20080404, 20080406, "Qingming"),
    (20080501, 20080503, "Labour Day"),
    (20080607, 20080609, "Dragon Boat"),
    (20080913, 20080915, "Mid-Autumn"),
    (20080929, 20081005, "National Day"),
    (20090101, 20090103, "New Year"),
    (20090125, 20090131, "Spring Festival"),
    (20090404, 20090406, "Qingming"),
    (20090501, 20090503, "Labour Day"),
    (20090528, 20090530, "Dragon Boat"),
    (20091001, 20091008, "National Day and Mid-Autumn"),
    (20100101, 20100103, "New Year"),
    (20100213, 20100219, "Spring Festival"),
    (20100403, 20100405, "Qingming"),
    (20100501, 20100503, "Labour Day"),
    (20100614, 20100616, "Dragon Boat"),
    (20100922, 20100924, "Mid-Autumn"),
    (20101001, 20101007, "National Day"),
    (20110101, 20110103, "New Year"),
    (20110202, 20110208, "Spring Festival"),
    (20110403, 20110405, "Qingming"),
    (20110430, 20110502, "Labour Day"),
    (20110604, 20110606, "Dragon Boat"),
    (20110910, 20110912, "Mid-Autumn"),
    (20111001, 20111007, "National Day"),
    (20120101, 20120103, "New Year"),
    (20120122, 20120128, "Spring Festival"),
    (20120402, 20120404, "Qingming"),
    (20120429, 20120501, "Labour Day"),
    (20120622, 20120624, "Dragon Boat"),
    (20120930, 20121007, "National Day and Mid-Autumn"),
    (20130101, 20130103, "New Year"),
    (20130209, 20130215, "Spring Festival"),
    (20130404, 20130406, "Qingming"),
    (20130429, 20130501, "Labour Day"),
    (20130610, 20130612, "Dragon Boat"),
    (20130919, 20130921, "Mid-Autumn"),
    (20131001, 20131007, "National Day"),
    (20140101, 20140101, "New Year"),
    (20140131, 20140206, "Spring Festival"),
    (20140405, 20140407, "Qingming"),
    (20140501, 20140503, "Labour Day"),
    (20140531, 20140602, "Dragon Boat"),
    (20140906, 20140908, "Mid-Autumn"),
    (20141001, 20141007, "National Day"),
    (20150101, 20150103, "New Year"),
    (20150218, 20150224, "Spring Festival"),
    (20150404, 20150406, "Qingming"),
    (20150501, 20150503, "Labour Day"),
    (20150620, 20150622, "Dragon Boat"),
    (20150903, 20150905, "Victory Day"),
    (20150926, 20150927, "Mid-Autumn"),
    (20151001, 20151007, "National Day"),
    (20160101, 20160103, "New Year"),
    (20160207, 20160213, "Spring Festival"),
    (20160402, 20160404, "Qingming"),
    (20160430, 20160502, "Labour Day"),
    (20160609, 20160611, "Dragon Boat"),
    (20160915, 20160917, "Mid-Autumn"),
    (20161001, 20161007, "National Day"),
    (20161231, 20170102, "New Year"),
    (20170127, 20170202, "Spring Festival"),
    (20170402, 20170404, "Qingming"),
    (20170429, 20170501, "Labour Day"),
    (20170528, 20170530, "Dragon Boat"),
    (20171001, 20171008, "National Day and Mid-Autumn"),
    (20171230, 20180101, "New Year"),
    (20180215, 20180221, "Spring Festival"),
    (20180405, 20180407, "Qingming"),
    (20180429, 20180501, "Labour Day"),
    (20180616, 20180618, "Dragon Boat"),
    (20180922, 20180924, "Mid-Autumn"),
    (20181001, 20181007, "National Day"),
    (20181230, 20190101, "New Year"),
    (20190204, 20190210, "Spring Festival"),
    (20190405, 20190407, "Qingming"),
    (20190501, 20190504, "Labour Day"),
    (20190607, 20190609, "Dragon Boat"),
    (20190913, 20190915, "Mid-Autumn"),
    (20191001, 20191007, "National Day"),
    (20200101, 20200101, "New Year"),
    (20200124, 20200202, "Spring Festival"),
    (20200404, 20200406, "Qingming"),
    (20200501, 20200505, "Labour Day"),
    (20200625, 20200627, "Dragon Boat"),
    (20201001, 20201008, "National Day and Mid-Autumn"),
    (20210101, 20210103, "New Year"),
    (20210211, 20210217, "Spring Festival"),
    (20210403, 20210405, "Qingming"),
    (20210501, 20210505, "Labour Day"),
    (20210612, 20210614, "Dragon Boat"),
    (20210919, 20210921, "Mid-Autumn"),
    (20211001, 20211007, "National Day"),
    (20220101, 20220103, "New Year"),
    (20220131, 20220206, "Spring Festival"),
    (20220403, 20220405, "Qingming"),
    (20220430, 20220504, "Labour Day"),
    (20220603, 20220605, "Dragon Boat"),
    (20220910, 20220912, "Mid-Autumn"),
    (20221001, 20221007, "National Day"),
    (20221231, 20230102, "New Year"),
    (20230121, 20230127, "Spring Festival"),
    (20230405, 20230405, "Qingming"),
    (20230429, 20230503, "Labour Day"),
    (20230622, 20230624, "Dragon Boat"),
    (20230929, 20231006, "National Day and Mid-Autumn"),
    (20240101, 20240101, "New Year"),
    (20240209, 20240217, "Spring Festival"),
    (20240404, 20240406, "Qingming"),
    (20240501, 20240505, "Labour Day"),
    (20240610, 20240610, "Dragon Boat"),
    (20240915, 20240917, "Mid-Autumn"),
    (20241001, 20241007, "National Day"),
    (20250101, 20250101, "New Year"),
    (20250128, 20250204, "Spring Festival"),
    (20250404, 20250406, "Qingming"),
    (20250501, 20250505, "Labour Day"),
    (20250531, 20250602, "Dragon Boat"),
    (20251001, 20251008, "National Day and Mid-Autumn"),
    (20260101, 20260103, "New Year"),
    (20260215, 20260223, "Spring Festival"),
    (20260404, 20260406, "Qingming"),
    (20260501, 20260505, "Labour Day"),
    (20260619, 20260621, "Dragon Boat"),
    (20260925, 20260927, "Mid-Autumn"),
    (20261001, 20261007, "National Day"),
)


# --------------------------------------------------------------------------- provisional rule


def _span(first: dt.date, last: dt.date, name: str) -> tuple[int, int, str]:
    return (_ymd(first), _ymd(last), name)


def _ymd(d: dt.date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def _one_day(d: dt.date, name: str) -> tuple[int, int, str]:
    """A one-day holiday as the exchanges have closed for it since 2015.

    A Tuesday holiday also closes the Monday before, a Thursday one the Friday after, and one
    on a weekend moves to the Monday after.
    """
    day = dt.timedelta(days=1)
    before, after = {0: (2, 0), 1: (1, 0), 2: (0, 0), 3: (0, 1), 4: (0, 2), 5: (0, 2), 6: (1, 1)}[
        d.weekday()
    ]
    return _span(d - before * day, d + after * day, name)


def provisional_closures(year: int) -> tuple[tuple[int, int, str], ...]:
    """The closures of ``year`` computed by rule, for years no published table covers yet.

    New Year, Qingming, Dragon Boat and a lone Mid-Autumn follow :func:`_one_day`; the
    Spring Festival closes from the lunar New Year's Eve through the sixth day of the new year;
    Labour Day closes five days from 1 May (from 30 April or 29 April when 1 May is a Sunday or a
    Monday); National Day closes 1-7 October, or 1-8 October when Mid-Autumn falls inside, or
    from a Mid-Autumn on 29 or 30 September for eight days. This is the pattern of the State
    Council's schedules since the 2025 holiday law; bridge days it cannot foresee make a
    provisional day only likely, never certain.
    """
    day = dt.timedelta(days=1)
    new_year = lunar_to_gregorian(year, 1, 1)
    may1 = dt.date(year, 5, 1)
    labour_from = may1 - {6: 1, 0: 2}.get(may1.weekday(), 0) * day
    mid_autumn = lunar_to_gregorian(year, 8, 15)
    oct1 = dt.date(year, 10, 1)
    rows = [
        _one_day(dt.date(year, 1, 1), "New Year"),
        _span(new_year - day, new_year + 6 * day, "Spring Festival"),
        _one_day(qingming(year), "Qingming"),
        _span(labour_from, labour_from + 4 * day, "Labour Day"),
        _one_day(lunar_to_gregorian(year, 5, 5), "Dragon Boat"),
    ]
    if oct1 <= mid_autumn <= oct1 + 7 * day:
        rows.append(_span(oct1, oct1 + 7 * day, "National Day and Mid-Autumn"))
    elif oct1 - 2 * day <= mid_autumn < oct1:
        rows.append(_span(mid_autumn, mid_autumn + 7 * day, "National Day and Mid-Autumn"))
    else:
        rows.append(_one_day(mid_autumn, "Mid-Autumn"))
        rows.append(_span(oct1, oct1 + 6 * day, "National Day"))
    return tuple(sorted(rows))
