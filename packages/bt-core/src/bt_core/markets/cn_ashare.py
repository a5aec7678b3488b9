"""China A-share preset (``RunConfig(market="cn_ashare")``).

The preset expands, once the data's symbols and calendar are known, into settings every run
may also give on its own: per-symbol ``instruments`` (lot, tick, minimum size, T+1,
zero-volume suspension), dated ``price_limits`` per symbol and dated fee lines. The figures
are the dated tables below, each row with its source; every table can be overridden
(``market_options`` or the plain settings, which win over the preset's).

Trading days for a new listing's no-limit days are counted on the data's own calendar;
before the data begins, weekdays stand in for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bt_core.errors import ParameterError

Board = Literal["main", "chinext", "star", "bse"]
BOARDS: tuple[str, ...] = ("main", "chinext", "star", "bse")

# ----- boards from the code -------------------------------------------------------------
#: Code prefixes by (exchange, board). Sources: SSE code allocation (600/601/603/605 main
#: board, 688/689 STAR: http://www.sse.com.cn/services/tradingservice/code/); SZSE (000/001/
#: 002/003 main board, 002 the former SME board merged into it on 2021-04-06; 300/301/302
#: ChiNext: http://www.szse.cn/marketServices/technicalservice/code/); BSE (old NEEQ codes
#: 43/83/87/88 and the 920 segment used for new listings since 2024-04 and for every stock
#: since 2025-10-09: BSE notice of 2025-10-09, https://www.bse.cn/).
PREFIXES: tuple[tuple[str, str, Board], ...] = (
    ("SH", "600", "main"),
    ("SH", "601", "main"),
    ("SH", "603", "main"),
    ("SH", "605", "main"),
    ("SH", "688", "star"),
    ("SH", "689", "star"),
    ("SZ", "000", "main"),
    ("SZ", "001", "main"),
    ("SZ", "002", "main"),
    ("SZ", "003", "main"),
    ("SZ", "300", "chinext"),
    ("SZ", "301", "chinext"),
    ("SZ", "302", "chinext"),
    ("BJ", "43", "bse"),
    ("BJ", "83", "bse"),
    ("BJ", "87", "bse"),
    ("BJ", "88", "bse"),
    ("BJ", "920", "bse"),
)

_SUFFIX = {
    "SH": "SH",
    "SS": "SH",
    "XSHG": "SH",
    "SZ": "SZ",
    "XSHE": "SZ",
    "BJ": "BJ",
    "BSE": "BJ",
}
_FORMS = (
    re.compile(r"^(?P<code>\d{6})\.(?P<ex>[A-Za-z]+)$"),  # 600000.SH, 600000.XSHG
    re.compile(r"^(?P<ex>[A-Za-z]{2})\.?(?P<code>\d{6})$"),  # SH600000, sh.600000
    re.compile(r"^(?P<code>\d{6})$"),  # plain 600000
)


def parse_symbol(symbol: str) -> tuple[str, str | None]:
    """(six-digit code, exchange "SH"/"SZ"/"BJ" or None when the symbol does not say)."""
    s = symbol.strip()
    for form in _FORMS:
        m = form.match(s)
        if m is None:
            continue
        ex = m.groupdict().get("ex")
        if ex is None:
            return m["code"], None
        exchange = _SUFFIX.get(ex.upper())
        if exchange is None:
            raise ParameterError(
                f"symbol {symbol!r}: unknown exchange {ex!r} (known: {', '.join(_SUFFIX)})",
                parameter="symbol",
            )
        return m["code"], exchange
    raise ParameterError(
        f"symbol {symbol!r} is not an A-share code (forms: 600000.SH, SH600000, sh.600000, "
        "600000); give its board in market_options.instruments",
        parameter="symbol",
    )


def board_of(symbol: str) -> Board:
    """The board a symbol's code belongs to (a ParameterError naming it when unknown)."""
    code, exchange = parse_symbol(symbol)
    for ex, prefix, board in PREFIXES:
        if code.startswith(prefix) and (exchange is None or exchange == ex):
            return board
    raise ParameterError(
        f"symbol {symbol!r}: code {code} is not on a known A-share board (main, chinext, "
        "star, bse); give its board in market_options.instruments",
        parameter="symbol",
    )


# ----- dated tables -----------------------------------------------------------------------
#: (from date, up, down) rows: the band in force from that date on; None = no limit.
Rows = tuple[tuple[str, float | None, float | None], ...]

#: Daily price limits by board for stocks without a risk warning.
LIMITS: dict[str, Rows] = {
    # SSE/SZSE: +-10 % since 1996-12-16 (exchange notices on price limits, 1996-12-13).
    "main": (("1996-12-16", 0.10, 0.10),),
    # ChiNext: +-10 % from its opening (2009-10-30); +-20 % from the registration reform
    # (SZSE ChiNext trading rules, in force 2020-08-24).
    "chinext": (("2009-10-30", 0.10, 0.10), ("2020-08-24", 0.20, 0.20)),
    # STAR: +-20 % from its opening (SSE STAR trading rules, first trading day 2019-07-22).
    "star": (("2019-07-22", 0.20, 0.20),),
    # BSE: +-30 % (BSE trading rules, opening 2021-11-15).
    "bse": (("2021-11-15", 0.30, 0.30),),
}

#: Daily price limits of risk-warning (ST, *ST) stocks by board.
ST_LIMITS: dict[str, Rows] = {
    # Main board: +-5 % since the risk-warning rules of 1998-04-22; +-10 % like the rest of
    # the main board after the SSE/SZSE "notice on adjusting the price-limit ratio of
    # main-board risk-warning stocks" (draft published 2025-06-27, Xinhua / China Securities
    # Journal of that day). The date in force here, 2025-07-07, is the first trading day
    # after the consultation closed (2025-07-04); it was not confirmed against the exchanges'
    # final notice: replace it with market_options={"st_limits": ...} if yours differs.
    "main": (("1998-04-22", 0.05, 0.05), ("2025-07-07", 0.10, 0.10)),
    # ChiNext: +-5 % before the registration reform, +-20 % from 2020-08-24 (SZSE ChiNext
    # trading rules 2020).
    "chinext": (("2009-10-30", 0.05, 0.05), ("2020-08-24", 0.20, 0.20)),
    # STAR and BSE apply their ordinary band to risk-warning stocks too.
    "star": LIMITS["star"],
    "bse": LIMITS["bse"],
}

#: A new listing's first days: (listings from this date on, rows of (trading days,
#: up, down)) in order; the board's ordinary band follows them. None = no limit.
ListingRows = tuple[tuple[int, float | None, float | None], ...]
NEW_LISTING: dict[str, tuple[tuple[str, ListingRows], ...]] = {
    # Main board: no limit on the first day before 2014; from 2014 the first day's price is
    # capped at +44 % / -36 % of the offer price (SSE/SZSE first-day rules, 2013-12-13);
    # under the registration system (first listings 2023-04-10) the first 5 trading days
    # have no limit (SSE/SZSE main-board trading rules 2023).
    "main": (
        ("1990-12-19", ((1, None, None),)),
        ("2014-01-01", ((1, 0.44, 0.36),)),
        ("2023-04-10", ((5, None, None),)),
    ),
    # ChiNext: first day +44 % / -36 % before the reform; first 5 trading days without a
    # limit for listings from 2020-08-24 (SZSE ChiNext trading rules 2020).
    "chinext": (
        ("2014-01-01", ((1, 0.44, 0.36),)),
        ("2020-08-24", ((5, None, None),)),
    ),
    # STAR: first 5 trading days without a limit (SSE STAR trading rules 2019).
    "star": (("2019-07-22", ((5, None, None),)),),
    # BSE: no limit on the first day (BSE trading rules 2021).
    "bse": (("2021-11-15", ((1, None, None),)),),
}

#: Lot, minimum size and tick by board: (size_increment, min_size, tick). Main board and
#: ChiNext buy in lots of 100 shares (SSE/SZSE trading rules); STAR buys at least 200 shares,
#: then in steps of 1 (SSE STAR trading rules 2019); BSE at least 100, then 1
#: (BSE trading rules 2021). Ticks are CNY 0.01 on every board.
LOTS: dict[str, tuple[float, float, float]] = {
    "main": (100.0, 0.0, 0.01),
    "chinext": (100.0, 0.0, 0.01),
    "star": (1.0, 200.0, 0.01),
    "bse": (1.0, 100.0, 0.01),
}

#: Stamp duty on share trades: (from, until, rate, side). Sources: Ministry of Finance /
#: State Taxation Administration announcements: 0.3 % both sides from 2007-05-30; 0.1 %
#: both sides from 2008-04-24; sells only from 2008-09-19; halved to 0.05 % from 2023-08-28
#: (MOF/STA announcement 2023 No. 39).
STAMP_DUTY: tuple[tuple[str, str | None, float, str], ...] = (
    ("2007-05-30", "2008-04-24", 0.003, "both"),
    ("2008-04-24", "2008-09-19", 0.001, "both"),
    ("2008-09-19", "2023-08-28", 0.001, "sell"),
    ("2023-08-28", None, 0.0005, "sell"),
)

#: Transfer fee (China Securities Depository and Clearing), both sides, of traded value:
#: 0.002 % from 2015-08-01 (CSDC notice: per value, both exchanges, both sides); halved to
#: 0.001 % from 2022-04-29 (CSDC notice of 2022-04-15). Earlier it was charged per share /
#: face value and is not tabled: give your own "transfer_fee" line for older data.
TRANSFER_FEE: tuple[tuple[str, str | None, float], ...] = (
    ("2015-08-01", "2022-04-29", 0.00002),
    ("2022-04-29", None, 0.00001),
)

#: Exchange handling fee (SSE/SZSE), both sides, of traded value: 0.00487 % from 2015-08-01
#: (exchange fee cut of 2015-08-01); 30 % lower, 0.00341 %, from 2023-08-28 (SSE/SZSE
#: notices of 2023-08-18 cutting the handling fee). Brokers often fold it into the quoted
#: commission: turn the line off with ``market_options={"handling_fee": False}`` then.
HANDLING_FEE: tuple[tuple[str, str | None, float], ...] = (
    ("2015-08-01", "2023-08-28", 0.0000487),
    ("2023-08-28", None, 0.0000341),
)

#: Broker commission: the rate is the broker's (the default is a common retail rate), the
#: CNY 5 minimum per order is the usual floor of Chinese brokers' schedules.
COMMISSION_RATE = 0.00025
COMMISSION_MIN = 5.0


# ----- options ----------------------------------------------------------------------------
class AShareInstrument(BaseModel):
    """Facts of one symbol that override what its code gives (None: from the code)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    board: Board | None = None
    st: bool = False
    listing_date: date | None = None
    lot: float | None = None
    min_size: float | None = None
    tick: float | None = None
    name: str | None = None

    @field_validator("listing_date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, (pd.Timestamp, np.datetime64, str)):
            ts = pd.Timestamp(v)
            return None if ts is pd.NaT else ts.date()
        return v


class AShareOptions(BaseModel):
    """``market_options`` of the cn_ashare preset.

    Attributes:
        commission: the broker's commission rate (both sides); commission_min its floor per
            order (CNY).
        handling_fee: charge the exchanges' handling fee as its own line (False when the
            broker's commission includes it).
        t_plus: trading days before bought shares may be sold (A-shares: 1).
        instruments: per-symbol facts (:class:`AShareInstrument`), a mapping of symbol to
            facts or a DataFrame with a ``symbol`` column (e.g. bt-data's instrument table).
        limits, st_limits: replace the price-limit tables by board (rows of ``(from date, up,
            down)`` as in ``LIMITS`` / ``ST_LIMITS``; a board not given keeps the preset's).
        stamp_duty, transfer_fee, handling_fee_rates: replace the dated tables (same row
            shapes as ``STAMP_DUTY`` / ``TRANSFER_FEE`` / ``HANDLING_FEE``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    commission: float = Field(COMMISSION_RATE, ge=0, lt=1)
    commission_min: float = Field(COMMISSION_MIN, ge=0)
    handling_fee: bool = True
    t_plus: int = Field(1, ge=0)
    limits: dict[str, Rows] = Field(default_factory=lambda: dict(LIMITS))
    st_limits: dict[str, Rows] = Field(default_factory=lambda: dict(ST_LIMITS))
    instruments: dict[str, AShareInstrument] = Field(default_factory=dict)
    stamp_duty: tuple[tuple[str, str | None, float, str], ...] = STAMP_DUTY
    transfer_fee: tuple[tuple[str, str | None, float], ...] = TRANSFER_FEE
    handling_fee_rates: tuple[tuple[str, str | None, float], ...] = HANDLING_FEE

    @field_validator("instruments", mode="before")
    @classmethod
    def _table(cls, v: Any) -> Any:
        return instrument_table(v)


def instrument_table(table: Any) -> dict[str, dict[str, Any]]:
    """A mapping of symbol -> facts from a mapping or a DataFrame with a ``symbol`` column
    (NaN/None cells: not given)."""
    if table is None:
        return {}
    if isinstance(table, pd.DataFrame):
        if "symbol" not in table.columns:
            raise ParameterError(
                "market_options.instruments: a table needs a 'symbol' column",
                parameter="market_options.instruments",
            )
        known = set(AShareInstrument.model_fields)
        rows: dict[str, dict[str, Any]] = {}
        for rec in table.to_dict("records"):
            sym = str(rec.pop("symbol"))
            rows[sym] = {k: _plain(v) for k, v in rec.items() if k in known}
            if rows[sym].get("st") is None:
                rows[sym].pop("st", None)
        return rows
    if isinstance(table, Mapping):
        return {str(k): v for k, v in table.items()}
    raise ParameterError(
        "market_options.instruments must be a mapping of symbol -> facts or a DataFrame",
        parameter="market_options.instruments",
    )


def _plain(v: Any) -> Any:
    """A table cell as a plain Python value (so that a configuration holding the table can be
    saved as JSON): None when missing, dates as ISO text, numpy scalars as Python ones."""
    if _missing(v):
        return None
    if isinstance(v, (pd.Timestamp, date)):
        return pd.Timestamp(v).date().isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _missing(v: Any) -> bool:
    # None, NaN, NaT and pandas' NA (a nullable column's empty cell) all mean "not given".
    return v is None or (not isinstance(v, str) and np.ndim(v) == 0 and bool(pd.isna(v)))


def options(raw: Mapping[str, Any] | None) -> AShareOptions:
    try:
        return AShareOptions.model_validate(dict(raw or {}))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ParameterError(
            f"market_options.{where}: {first.get('msg')}", parameter=f"market_options.{where}"
        ) from None


# ----- expansion --------------------------------------------------------------------------
def _day_ns(d: str | date, offset_ns: int) -> int:
    """Midnight of trading day ``d`` on the run's clock (UTC shifted by the day offset)."""
    return int(pd.Timestamp(d).value) - offset_ns


def _rows_to_bands(rows: Rows, offset_ns: int) -> list[dict[str, Any]]:
    return [{"from": _day_ns(d, offset_ns), "up": up, "down": down} for d, up, down in rows]


def _nth_trading_day(start: date, n: int, days: np.ndarray) -> date:
    """The ``n``-th trading day from ``start`` (day 1 = the first trading day on or after
    it) on the calendar ``days`` (sorted dates), weekdays before and after it."""
    out: list[date] = []
    first = days[0] if len(days) else None
    d = start
    while len(out) < n and (first is None or d < first):
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    if len(out) < n:
        take = [x for x in days if x >= d][: n - len(out)]
        out.extend(take)
        if take:
            d = take[-1] + timedelta(days=1)
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out[n - 1]


def _schedule(
    opt: AShareOptions,
    board: str,
    st: bool,
    listing: date | None,
    days: np.ndarray,
    offset_ns: int,
) -> list[dict[str, Any]]:
    table = opt.st_limits if st else opt.limits
    base = list(table.get(board, (ST_LIMITS if st else LIMITS)[board]))
    if listing is None:
        return _rows_to_bands(tuple(base), offset_ns)
    rules = [r for d, r in NEW_LISTING[board] if date.fromisoformat(d) <= listing]
    if not rules:
        return _rows_to_bands(tuple(base), offset_ns)
    rows: list[tuple[str, float | None, float | None]] = []
    n_done = 0
    for n, up, down in rules[-1]:
        rows.append((_nth_trading_day(listing, n_done + 1, days).isoformat(), up, down))
        n_done = n
    end = _nth_trading_day(listing, n_done + 1, days)
    # The board's band in force on the first ordinary day, then its later changes.
    later = [r for r in base if date.fromisoformat(r[0]) > end]
    current = [r for r in base if date.fromisoformat(r[0]) <= end]
    if current:
        rows.append((end.isoformat(), current[-1][1], current[-1][2]))
    rows.extend(later)
    return _rows_to_bands(tuple(rows), offset_ns)


def _fee_lines(opt: AShareOptions, use_commission: bool) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    if use_commission:
        lines.append(
            {
                "name": "commission",
                "type": "rate",
                "rate": opt.commission,
                "min": opt.commission_min,
                "kind": "commission",
            }
        )
    for f, u, rate, side in opt.stamp_duty:
        lines.append(
            {"name": "stamp_duty", "rate": rate, "side": side, "kind": "tax", "from": f, "until": u}
        )
    for f, u, rate in opt.transfer_fee:
        lines.append({"name": "transfer_fee", "rate": rate, "from": f, "until": u})
    if opt.handling_fee:
        for f, u, rate in opt.handling_fee_rates:
            lines.append({"name": "handling_fee", "rate": rate, "from": f, "until": u})
    return lines


def expand(
    raw_options: Mapping[str, Any] | None,
    symbols: Sequence[str],
    times: pd.DatetimeIndex,
    *,
    day_offset_hours: float = 0.0,
    use_commission: bool = True,
    user_fee_names: Iterable[str] = (),
) -> dict[str, Any]:
    """The preset's settings for a run on ``symbols`` over ``times``: ``instruments`` (per
    symbol), ``price_limits`` (per symbol) and ``fees`` (a list of FeeLine dicts with
    ``from``/``until`` as dates). Fee lines named in ``user_fee_names`` are left out (the
    user's replace them)."""
    opt = options(raw_options)
    offset_ns = int(day_offset_hours * 3_600_000_000_000)
    unknown = sorted(set(opt.instruments) - set(symbols))
    if unknown:
        raise ParameterError(
            f"market_options.instruments names {unknown}, which are not symbols of the data",
            parameter="market_options.instruments",
        )
    shifted = times + pd.Timedelta(offset_ns, "ns") if len(times) else times
    days = np.array(sorted({ts.date() for ts in shifted}), dtype=object)
    instruments: dict[str, dict[str, Any]] = {}
    limits: dict[str, list[dict[str, Any]]] = {}
    for sym in symbols:
        facts = opt.instruments.get(sym, AShareInstrument())
        board = facts.board or board_of(sym)
        lot, min_size, tick = LOTS[board]
        instruments[sym] = {
            "size_increment": lot if facts.lot is None else facts.lot,
            "min_size": min_size if facts.min_size is None else facts.min_size,
            "tick_size": tick if facts.tick is None else facts.tick,
            "t_plus": opt.t_plus,
            "suspend_on_zero_volume": True,
        }
        limits[sym] = _schedule(opt, board, facts.st, facts.listing_date, days, offset_ns)
    skip = set(user_fee_names)
    fees = [f for f in _fee_lines(opt, use_commission) if f["name"] not in skip]
    if len(days):
        first = days[0]
        for name in ("stamp_duty", "transfer_fee", "handling_fee"):
            rows = [f for f in fees if f["name"] == name]
            if rows and first < date.fromisoformat(rows[0]["from"]):
                raise ParameterError(
                    f"cn_ashare: the data begin {first}, before the preset's {name} table "
                    f"(from {rows[0]['from']}); give your own {name!r} fee line(s) in fees",
                    parameter="fees",
                )
    for f in fees:
        for k in ("from", "until"):
            if f.get(k) is not None:
                f[k] = _day_ns(f[k], offset_ns)
            else:
                f.pop(k, None)
    return {"instruments": instruments, "price_limits": limits, "fees": fees}


__all__ = [
    "BOARDS",
    "HANDLING_FEE",
    "LIMITS",
    "LOTS",
    "NEW_LISTING",
    "PREFIXES",
    "STAMP_DUTY",
    "ST_LIMITS",
    "TRANSFER_FEE",
    "AShareInstrument",
    "AShareOptions",
    "board_of",
    "expand",
    "instrument_table",
    "parse_symbol",
]
