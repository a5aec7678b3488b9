//! Run results as columns (dicts of numpy arrays / lists), one helper per column type.

use bt_engine_core::ledger::ExposureSummary;
use bt_engine_core::mem::Chunked;
use bt_engine_core::orders::Link;
use bt_engine_core::types::MarginCall;
use bt_engine_core::{Broker, Fill, Order, OrderStatus, Trade};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

struct Columns<'py> {
    d: Bound<'py, PyDict>,
}

impl<'py> Columns<'py> {
    fn new(py: Python<'py>) -> Self {
        Self { d: PyDict::new(py) }
    }
    /// A numeric column from `rows`.
    fn num<'r, R: 'r, T: numpy::Element>(
        self,
        name: &str,
        rows: impl IntoIterator<Item = &'r R>,
        f: impl Fn(&R) -> T,
    ) -> PyResult<Self> {
        let py = self.d.py();
        self.d
            .set_item(name, PyArray1::from_iter(py, rows.into_iter().map(f)))?;
        Ok(self)
    }
    /// A column of a few distinct static labels (side, type, status ...): one Python string
    /// per distinct label, shared by every row.
    fn label<'r, R: 'r>(
        self,
        name: &str,
        rows: impl IntoIterator<Item = &'r R>,
        f: impl Fn(&R) -> Option<&'static str>,
    ) -> PyResult<Self> {
        let py = self.d.py();
        let mut seen: Vec<(&'static str, Bound<'py, PyString>)> = Vec::new();
        let mut cell = |v: Option<&'static str>| -> Bound<'py, PyAny> {
            let Some(v) = v else {
                return py.None().into_bound(py);
            };
            if let Some((_, s)) = seen.iter().find(|(k, _)| std::ptr::eq(*k, v) || *k == v) {
                return s.clone().into_any();
            }
            let s = PyString::new(py, v);
            seen.push((v, s.clone()));
            s.into_any()
        };
        let items: Vec<Bound<'py, PyAny>> = rows.into_iter().map(|r| cell(f(r))).collect();
        self.d.set_item(name, PyList::new(py, items)?)?;
        Ok(self)
    }
    /// A text (or optional text) column from `rows`.
    fn text<'r, R: 'r, T: for<'a> IntoPyObject<'a>>(
        self,
        name: &str,
        rows: impl IntoIterator<Item = &'r R>,
        f: impl Fn(&R) -> T,
    ) -> PyResult<Self> {
        let py = self.d.py();
        let items: Vec<T> = rows.into_iter().map(f).collect();
        self.d.set_item(name, PyList::new(py, items)?)?;
        Ok(self)
    }
    fn done(self) -> Bound<'py, PyDict> {
        self.d
    }
}

/// Fills: order_id, symbol (index), bar, ts, side, size, price, commission, tax, slippage.
pub fn fills<'py>(py: Python<'py>, f: &Chunked<Fill>, ts: &[i64]) -> PyResult<Bound<'py, PyDict>> {
    Ok(Columns::new(py)
        .num("order_id", f, |x| x.order_id)
        .and_then(|c| c.num("symbol", f, |x| x.symbol as i64))
        .and_then(|c| c.num("bar", f, |x| x.bar as i64))
        .and_then(|c| c.num("ts", f, |x| ts[x.bar]))
        .and_then(|c| c.label("side", f, |x| Some(x.side.as_str())))
        .and_then(|c| c.num("size", f, |x| x.size))
        .and_then(|c| c.num("price", f, |x| x.price))
        .and_then(|c| c.num("commission", f, |x| x.commission))
        .and_then(|c| c.num("tax", f, |x| x.tax))
        .and_then(|c| c.num("slippage", f, |x| x.slippage))?
        .done())
}

/// (bars, numpy's sum, values other than 0, first bad value as (bar, value)).
pub type ExposureFigures = (usize, f64, usize, Option<(usize, f64)>);

/// A run's exposure figures, or why there are none.
pub fn exposure_figures(s: Option<ExposureSummary>) -> PyResult<ExposureFigures> {
    let s = s.ok_or_else(|| {
        crate::errors::config_error(
            "exposure_curve",
            "no exposure figures: a run without its exposure curve streams them over the \
             length planned at its start, and this one recorded a different number of bars"
                .to_string(),
        )
    })?;
    Ok((s.n, s.sum, s.nonzero, s.first_bad))
}

/// The costs of each fill (commission, tax, slippage): what a run's statistics need of its
/// fills, without the other seven columns.
pub fn fill_costs<'py>(py: Python<'py>, f: &Chunked<Fill>) -> PyResult<Bound<'py, PyDict>> {
    Ok(Columns::new(py)
        .num("commission", f, |x| x.commission)
        .and_then(|c| c.num("tax", f, |x| x.tax))
        .and_then(|c| c.num("slippage", f, |x| x.slippage))?
        .done())
}

/// Every order: id, symbol (index), side, type, tif, size (units; NaN for a value or percent
/// order that never traded), sizing and amount (the size as requested), filled, limit_price
/// and stop_price (NaN when the kind has none; a trailing stop's last stop), avg_price (NaN if
/// unfilled), status, reason_code and reason (None unless rejected or cancelled by a rule),
/// submitted_bar, closed_bar (-1 while open), parent_id (-1: none; a bracket exit's entry or
/// an OTO child's parent), oco_group (-1: none), commission and tax paid, liquidation (sent
/// by a margin call).
pub fn orders<'py>(py: Python<'py>, o: &Chunked<Order>) -> PyResult<Bound<'py, PyDict>> {
    Ok(Columns::new(py)
        .num("order_id", o, |x| x.id)
        .and_then(|c| c.num("symbol", o, |x| x.symbol as i64))
        .and_then(|c| c.label("side", o, |x| Some(x.side.as_str())))
        .and_then(|c| c.label("type", o, |x| Some(x.kind.as_str())))
        .and_then(|c| c.label("tif", o, |x| Some(x.tif.as_str())))
        .and_then(|c| c.num("size", o, |x| x.size))
        .and_then(|c| c.label("sizing", o, |x| Some(x.sizing.as_str())))
        .and_then(|c| c.num("amount", o, |x| x.amount))
        .and_then(|c| c.num("filled", o, |x| x.filled))
        .and_then(|c| {
            c.num("limit_price", o, |x| {
                x.kind.limit_price().unwrap_or(f64::NAN)
            })
        })
        .and_then(|c| c.num("stop_price", o, |x| x.stop_price))
        .and_then(|c| c.num("avg_price", o, |x| x.avg_price))
        .and_then(|c| c.label("status", o, |x| Some(x.status.as_str())))
        .and_then(|c| c.label("reason_code", o, |x| x.reason_code()))
        .and_then(|c| c.text("reason", o, |x| x.reason().map(str::to_owned)))
        .and_then(|c| c.num("submitted_bar", o, |x| x.submitted_bar as i64))
        .and_then(|c| c.num("closed_bar", o, |x| x.closed_bar.map_or(-1, |c| c as i64)))
        .and_then(|c| c.num("parent_id", o, |x| parent_id(x.link)))
        .and_then(|c| c.num("oco_group", o, |x| oco_group(x.link)))
        .and_then(|c| c.num("commission", o, |x| x.commission))
        .and_then(|c| c.num("tax", o, |x| x.tax))
        .and_then(|c| c.num("liquidation", o, |x| x.liquidation))?
        .done())
}

pub fn parent_id(link: Option<Link>) -> i64 {
    match link {
        Some(Link::Bracket { parent } | Link::Oto { parent }) => parent as i64,
        _ => -1,
    }
}

pub fn oco_group(link: Option<Link>) -> i64 {
    match link {
        Some(Link::Oco { group }) => group as i64,
        _ => -1,
    }
}

/// Closed round trips (FIFO lots).
pub fn trades<'py>(
    py: Python<'py>,
    tr: &Chunked<Trade>,
    ts: &[i64],
) -> PyResult<Bound<'py, PyDict>> {
    Ok(Columns::new(py)
        .num("symbol", tr, |x| x.symbol as i64)
        .and_then(|c| c.num("direction", tr, |x| x.direction))
        .and_then(|c| c.num("size", tr, |x| x.size))
        .and_then(|c| c.num("entry_bar", tr, |x| x.entry_bar as i64))
        .and_then(|c| c.num("exit_bar", tr, |x| x.exit_bar as i64))
        .and_then(|c| c.num("entry_ts", tr, |x| ts[x.entry_bar]))
        .and_then(|c| c.num("exit_ts", tr, |x| ts[x.exit_bar]))
        .and_then(|c| c.num("entry_price", tr, |x| x.entry_price))
        .and_then(|c| c.num("exit_price", tr, |x| x.exit_price))
        .and_then(|c| c.num("gross_pnl", tr, |x| x.gross_pnl))
        .and_then(|c| c.num("commission", tr, |x| x.commission))?
        .done())
}

/// Final per-symbol ledger: position, avg_cost, last_price, realized (net of costs),
/// unrealized, commission, tax, slippage, borrow (short financing); plus cash and equity.
pub fn ledger<'py>(py: Python<'py>, b: &Broker) -> PyResult<Bound<'py, PyDict>> {
    let symbols: Vec<usize> = (0..b.n_symbols()).collect();
    let d = Columns::new(py)
        .num("position", &symbols, |&s| b.position(s))
        .and_then(|c| c.num("avg_cost", &symbols, |&s| b.avg_cost(s)))
        .and_then(|c| c.num("last_price", &symbols, |&s| b.last_prices()[s]))
        .and_then(|c| c.num("realized", &symbols, |&s| b.realized()[s]))
        .and_then(|c| c.num("unrealized", &symbols, |&s| b.unrealized(s)))
        .and_then(|c| c.num("commission", &symbols, |&s| b.commission_paid()[s]))
        .and_then(|c| c.num("tax", &symbols, |&s| b.tax_paid()[s]))
        .and_then(|c| c.num("slippage", &symbols, |&s| b.slippage_paid()[s]))
        .and_then(|c| c.num("borrow", &symbols, |&s| b.borrow_paid()[s]))?
        .done();
    d.set_item("cash", b.cash())?;
    d.set_item("equity", b.equity())?;
    Ok(d)
}

/// Margin calls: bar, ts, equity and maintenance margin at that close, and the liquidation
/// orders sent (order ids, largest requirement first).
pub fn margin_calls<'py>(
    py: Python<'py>,
    calls: &[MarginCall],
    ts: &[i64],
) -> PyResult<Bound<'py, PyDict>> {
    let d = Columns::new(py)
        .num("bar", calls, |x| x.bar as i64)
        .and_then(|c| c.num("ts", calls, |x| ts[x.bar]))
        .and_then(|c| c.num("equity", calls, |x| x.equity))
        .and_then(|c| c.num("required", calls, |x| x.required))?
        .done();
    let ids: Vec<Vec<usize>> = calls.iter().map(|c| c.orders.clone()).collect();
    d.set_item("order_ids", ids)?;
    Ok(d)
}

/// Rejected orders by reason code: {code: (count, first message)}, without building the
/// order table.
pub fn rejections<'py>(py: Python<'py>, orders: &Chunked<Order>) -> PyResult<Bound<'py, PyDict>> {
    let mut counts: Vec<(&'static str, usize, &str)> = Vec::new();
    // Cancellations by a rule (IOC, OCO, brackets) carry codes too; only rejections count.
    for o in orders.iter().filter(|o| o.status == OrderStatus::Rejected) {
        if let (Some(code), Some(msg)) = (o.reason_code(), o.reason()) {
            match counts.iter_mut().find(|(c, _, _)| *c == code) {
                Some(entry) => entry.1 += 1,
                None => counts.push((code, 1, msg)),
            }
        }
    }
    let d = PyDict::new(py);
    for (code, n, msg) in counts {
        d.set_item(code, (n, msg))?;
    }
    Ok(d)
}
