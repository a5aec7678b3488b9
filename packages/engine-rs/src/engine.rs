//! The `Engine` Python class: one run over one data set.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bt_engine_core::drivers::{self, Signals, SmaCross, Weights};
use bt_engine_core::time::format_ts;
use bt_engine_core::{
    Broker, Config, EngineError, Event, FillOn, OrderKind, OrderRequest, Side, TimeInForce,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::views::{BarView, FillInfo, Line, MarketData, OrderInfo};
use crate::StrategyError;

fn value_error(e: EngineError) -> PyErr {
    PyValueError::new_err(e.message)
}

fn parse_side(side: &str) -> PyResult<Side> {
    match side.to_ascii_lowercase().as_str() {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(PyValueError::new_err(format!(
            "side must be 'buy' or 'sell', got {side:?}"
        ))),
    }
}

fn parse_tif(tif: &str) -> PyResult<TimeInForce> {
    match tif.to_ascii_lowercase().as_str() {
        "gtc" => Ok(TimeInForce::Gtc),
        "day" => Ok(TimeInForce::Day),
        _ => Err(PyValueError::new_err(format!(
            "tif must be 'gtc' or 'day', got {tif:?}"
        ))),
    }
}

/// Callbacks of a Python strategy; `None` where the strategy does not define one.
struct Callbacks<'py> {
    next: Bound<'py, PyAny>,
    on_order: Option<Bound<'py, PyAny>>,
    on_trade: Option<Bound<'py, PyAny>>,
    normalize: Bound<'py, PyAny>,
    progress: Option<Bound<'py, PyAny>>,
}

/// One backtest over one data set. Create it with the market data and costs, then call
/// exactly one of `run_strategy`, `run_signals`, `run_weights`, `run_sma_cross`.
#[pyclass(unsendable, module = "bt_engine._engine")]
pub struct Engine {
    data: Rc<MarketData>,
    symbols: Vec<String>,
    broker: RefCell<Broker>,
    cursor: Rc<Cell<usize>>,
    ran: Cell<bool>,
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (
        ts, open, high, low, close, volume, symbols, *,
        cash = 100_000.0, commission = 0.0, commission_min = 0.0, commission_fixed = 0.0,
        slippage_bps = 0.0, fill_on = "next_open", day_offset_hours = 0.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        ts: &Bound<'_, PyArray1<i64>>,
        open: &Bound<'_, PyArray2<f64>>,
        high: &Bound<'_, PyArray2<f64>>,
        low: &Bound<'_, PyArray2<f64>>,
        close: &Bound<'_, PyArray2<f64>>,
        volume: &Bound<'_, PyArray2<f64>>,
        symbols: Vec<String>,
        cash: f64,
        commission: f64,
        commission_min: f64,
        commission_fixed: f64,
        slippage_bps: f64,
        fill_on: &str,
        day_offset_hours: f64,
    ) -> PyResult<Self> {
        let fill_on = match fill_on {
            "next_open" => FillOn::NextOpen,
            "close" => FillOn::Close,
            other => {
                return Err(PyValueError::new_err(format!(
                    "parameter fill_on must be 'next_open' or 'close', got {other:?}"
                )))
            }
        };
        if !day_offset_hours.is_finite() || day_offset_hours.abs() > 24.0 {
            return Err(PyValueError::new_err(format!(
                "parameter day_offset_hours must be within [-24, 24], got {day_offset_hours}"
            )));
        }
        let data = MarketData::new(ts, [open, high, low, close, volume])?;
        if symbols.len() != data.n_symbols {
            return Err(PyValueError::new_err(format!(
                "{} symbol names for {} data columns",
                symbols.len(),
                data.n_symbols
            )));
        }
        let cfg = Config {
            cash,
            commission_rate: commission,
            commission_min,
            commission_fixed,
            slippage_bps,
            fill_on,
            day_offset_ns: (day_offset_hours * 3_600_000_000_000.0) as i64,
        };
        let mut broker = Broker::new(cfg, data.n_symbols).map_err(value_error)?;
        broker
            .set_symbol_names(symbols.clone())
            .map_err(value_error)?;
        Ok(Self {
            data: Rc::new(data),
            symbols,
            broker: RefCell::new(broker),
            cursor: Rc::new(Cell::new(0)),
            ran: Cell::new(false),
        })
    }

    #[getter]
    fn n_bars(&self) -> usize {
        self.data.n_bars
    }
    #[getter]
    fn symbols(&self) -> Vec<String> {
        self.symbols.clone()
    }

    /// A series (same length as the data) revealed bar by bar as the run advances.
    fn line(&self, array: &Bound<'_, PyArray1<f64>>) -> PyResult<Line> {
        if array.len()? != self.data.n_bars {
            return Err(PyValueError::new_err(format!(
                "a line needs one value per bar: got {} values for {} bars",
                array.len()?,
                self.data.n_bars
            )));
        }
        Line::new(array, self.cursor.clone())
    }

    /// The reusable current-bar object passed to `next`.
    fn bar_view(&self) -> BarView {
        BarView {
            data: self.data.clone(),
            cursor: self.cursor.clone(),
        }
    }

    // ----- the ledger, as the strategy sees it -------------------------------------------

    #[getter]
    fn cash(&self) -> f64 {
        self.broker.borrow().cash()
    }
    #[getter]
    fn equity(&self) -> f64 {
        self.broker.borrow().equity()
    }
    #[getter]
    fn bar_index(&self) -> usize {
        self.cursor.get()
    }
    fn position(&self, symbol: usize) -> PyResult<f64> {
        self.check_symbol(symbol)?;
        Ok(self.broker.borrow().position(symbol))
    }
    fn avg_cost(&self, symbol: usize) -> PyResult<f64> {
        self.check_symbol(symbol)?;
        Ok(self.broker.borrow().avg_cost(symbol))
    }
    fn positions<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.broker.borrow().positions().to_vec().into_pyarray(py)
    }
    fn open_orders(&self) -> Vec<OrderInfo> {
        let b = self.broker.borrow();
        b.active_order_ids()
            .filter_map(|id| b.order(id))
            .map(|o| OrderInfo::from_order(o, &self.symbols))
            .collect()
    }
    fn order(&self, id: u64) -> PyResult<OrderInfo> {
        let b = self.broker.borrow();
        b.order(id)
            .map(|o| OrderInfo::from_order(o, &self.symbols))
            .ok_or_else(|| PyValueError::new_err(format!("unknown order id {id}")))
    }

    /// Submit an order; returns its id. Errors (ValueError) name the bad argument.
    #[pyo3(signature = (symbol, side, size, limit = None, tif = "gtc"))]
    fn submit(
        &self,
        symbol: usize,
        side: &str,
        size: f64,
        limit: Option<f64>,
        tif: &str,
    ) -> PyResult<u64> {
        let req = OrderRequest {
            symbol,
            side: parse_side(side)?,
            size,
            kind: limit.map_or(OrderKind::Market, OrderKind::Limit),
            tif: parse_tif(tif)?,
        };
        self.broker.borrow_mut().submit(req).map_err(value_error)
    }

    /// Cancel a working order; False when it had already filled, expired or been cancelled.
    fn cancel(&self, id: u64) -> PyResult<bool> {
        self.broker.borrow_mut().cancel(id).map_err(value_error)
    }

    // ----- drivers ---------------------------------------------------------------------

    /// Drive a Python strategy: `next(bar)` once per bar, `on_order(order)` and
    /// `on_trade(fill)` on events when given; `normalize(ret)` turns a non-None return value
    /// of `next` into a list of (symbol, side, size, limit, tif) tuples.
    /// `next` is first called on bar `start` (earlier bars still fill orders and mark equity).
    #[pyo3(signature = (next, bar, normalize, on_order = None, on_trade = None, progress = None, progress_every = 0, start = 0))]
    #[allow(clippy::too_many_arguments)]
    fn run_strategy<'py>(
        &self,
        py: Python<'py>,
        next: Bound<'py, PyAny>,
        bar: Bound<'py, PyAny>,
        normalize: Bound<'py, PyAny>,
        on_order: Option<Bound<'py, PyAny>>,
        on_trade: Option<Bound<'py, PyAny>>,
        progress: Option<Bound<'py, PyAny>>,
        progress_every: usize,
        start: usize,
    ) -> PyResult<()> {
        self.start()?;
        let cb = Callbacks {
            next,
            on_order,
            on_trade,
            normalize,
            progress,
        };
        let record = cb.on_order.is_some() || cb.on_trade.is_some();
        self.broker.borrow_mut().set_record_events(record);
        let bars = self.data.raw_bars();
        let args = PyTuple::new(py, [bar])?;
        for t in 0..self.data.n_bars {
            self.cursor.set(t);
            self.broker.borrow_mut().begin_bar(&bars, t);
            if record {
                self.dispatch(py, &cb, t)?;
            }
            if t >= start {
                let ret = cb
                    .next
                    .call1(&args)
                    .map_err(|e| self.strategy_error(py, "next", t, e))?;
                if !ret.is_none() {
                    self.submit_returned(py, &cb.normalize, &ret, t)?;
                }
                if record {
                    self.dispatch(py, &cb, t)?;
                }
            }
            self.broker.borrow_mut().end_bar(&bars, t);
            if record {
                self.dispatch(py, &cb, t)?;
            }
            if let Some(p) = &cb.progress {
                if progress_every > 0 && (t + 1) % progress_every == 0 {
                    p.call1((t + 1,))?;
                }
            }
        }
        Ok(())
    }

    /// Vectorized entries/exits (bool, time x symbols): the whole loop runs in Rust.
    fn run_signals(
        &self,
        py: Python<'_>,
        entries: PyReadonlyArray2<'_, bool>,
        exits: PyReadonlyArray2<'_, bool>,
        size: f64,
    ) -> PyResult<()> {
        let (e, x) = (
            contiguous(&entries, "entries")?,
            contiguous(&exits, "exits")?,
        );
        let mut drv = Signals {
            entries: e,
            exits: x,
            size,
        };
        drv.validate(&self.data.raw_bars()).map_err(value_error)?;
        self.run_native(py, &mut drv)
    }

    /// Vectorized target weights (float, time x symbols): rebalance in Rust.
    #[pyo3(signature = (weights, min_trade = 1e-9))]
    fn run_weights(
        &self,
        py: Python<'_>,
        weights: PyReadonlyArray2<'_, f64>,
        min_trade: f64,
    ) -> PyResult<()> {
        let w = contiguous(&weights, "weights")?;
        let mut drv = Weights {
            weights: w,
            min_trade,
        };
        drv.validate(&self.data.raw_bars()).map_err(value_error)?;
        self.run_native(py, &mut drv)
    }

    /// The built-in SMA crossover strategy, entirely in Rust.
    #[pyo3(signature = (fast = 10, slow = 30, size = 1.0))]
    fn run_sma_cross(&self, py: Python<'_>, fast: usize, slow: usize, size: f64) -> PyResult<()> {
        let mut drv =
            SmaCross::new(&self.data.raw_bars(), fast, slow, size).map_err(value_error)?;
        self.run_native(py, &mut drv)
    }

    // ----- results (columnar) ----------------------------------------------------------

    fn equity_curve<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.broker
            .borrow()
            .equity_curve()
            .to_vec()
            .into_pyarray(py)
    }
    fn exposure_curve<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.broker
            .borrow()
            .exposure_curve()
            .to_vec()
            .into_pyarray(py)
    }

    /// Fills as columns: order_id, symbol (index), bar, ts, side, size, price, commission, slippage.
    fn fills<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let b = self.broker.borrow();
        let f = b.fills();
        let d = PyDict::new(py);
        d.set_item(
            "order_id",
            f.iter()
                .map(|x| x.order_id)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "symbol",
            f.iter()
                .map(|x| x.symbol as i64)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "bar",
            f.iter()
                .map(|x| x.bar as i64)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "ts",
            f.iter()
                .map(|x| self.data.ts_at(x.bar))
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item("side", PyList::new(py, f.iter().map(|x| x.side.as_str()))?)?;
        d.set_item(
            "size",
            f.iter()
                .map(|x| x.size)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "price",
            f.iter()
                .map(|x| x.price)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "commission",
            f.iter()
                .map(|x| x.commission)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "slippage",
            f.iter()
                .map(|x| x.slippage)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        Ok(d)
    }

    /// Every order with its final status, as columns: id, symbol (index), side, type, tif,
    /// size, filled, limit_price (NaN for market), avg_price (NaN if unfilled), status,
    /// reason (None unless rejected), submitted_bar, closed_bar (-1 while working).
    fn order_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let b = self.broker.borrow();
        let o = b.orders();
        let d = PyDict::new(py);
        d.set_item(
            "order_id",
            o.iter().map(|x| x.id).collect::<Vec<_>>().into_pyarray(py),
        )?;
        d.set_item(
            "symbol",
            o.iter()
                .map(|x| x.symbol as i64)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item("side", PyList::new(py, o.iter().map(|x| x.side.as_str()))?)?;
        d.set_item("type", PyList::new(py, o.iter().map(|x| x.kind.as_str()))?)?;
        d.set_item("tif", PyList::new(py, o.iter().map(|x| x.tif.as_str()))?)?;
        d.set_item(
            "size",
            o.iter()
                .map(|x| x.size)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "filled",
            o.iter()
                .map(|x| x.filled)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "limit_price",
            o.iter()
                .map(|x| x.kind.limit_price().unwrap_or(f64::NAN))
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "avg_price",
            o.iter()
                .map(|x| x.avg_price)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "status",
            PyList::new(py, o.iter().map(|x| x.status.as_str()))?,
        )?;
        d.set_item(
            "reason",
            PyList::new(py, o.iter().map(|x| x.reason.clone()))?,
        )?;
        d.set_item(
            "submitted_bar",
            o.iter()
                .map(|x| x.submitted_bar as i64)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "closed_bar",
            o.iter()
                .map(|x| x.closed_bar.map_or(-1, |c| c as i64))
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        Ok(d)
    }

    /// Every order with its final status, as objects.
    fn orders(&self) -> Vec<OrderInfo> {
        let b = self.broker.borrow();
        b.orders()
            .iter()
            .map(|o| OrderInfo::from_order(o, &self.symbols))
            .collect()
    }

    /// Closed round trips (FIFO lots) as columns.
    fn trades<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let b = self.broker.borrow();
        let tr = b.trades();
        let ts = |bar: usize| self.data.ts_at(bar);
        let d = PyDict::new(py);
        d.set_item(
            "symbol",
            tr.iter()
                .map(|x| x.symbol as i64)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "direction",
            tr.iter()
                .map(|x| x.direction)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "size",
            tr.iter()
                .map(|x| x.size)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "entry_bar",
            tr.iter()
                .map(|x| x.entry_bar as i64)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "exit_bar",
            tr.iter()
                .map(|x| x.exit_bar as i64)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "entry_ts",
            tr.iter()
                .map(|x| ts(x.entry_bar))
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "exit_ts",
            tr.iter()
                .map(|x| ts(x.exit_bar))
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "entry_price",
            tr.iter()
                .map(|x| x.entry_price)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "exit_price",
            tr.iter()
                .map(|x| x.exit_price)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "gross_pnl",
            tr.iter()
                .map(|x| x.gross_pnl)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item(
            "commission",
            tr.iter()
                .map(|x| x.commission)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        Ok(d)
    }

    /// Final per-symbol ledger: position, avg_cost, last_price, realized (net of costs),
    /// unrealized, commission, slippage; plus cash and equity.
    fn ledger<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let b = self.broker.borrow();
        let n = b.n_symbols();
        let d = PyDict::new(py);
        d.set_item("position", b.positions().to_vec().into_pyarray(py))?;
        d.set_item(
            "avg_cost",
            (0..n)
                .map(|s| b.avg_cost(s))
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item("last_price", b.last_prices().to_vec().into_pyarray(py))?;
        d.set_item("realized", b.realized().to_vec().into_pyarray(py))?;
        d.set_item(
            "unrealized",
            (0..n)
                .map(|s| b.unrealized(s))
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        d.set_item("commission", b.commission_paid().to_vec().into_pyarray(py))?;
        d.set_item("slippage", b.slippage_paid().to_vec().into_pyarray(py))?;
        d.set_item("cash", b.cash())?;
        d.set_item("equity", b.equity())?;
        Ok(d)
    }
}

fn contiguous<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray2<'_, T>,
    name: &str,
) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a C-contiguous array (time x symbols)"
        ))
    })
}

impl Engine {
    fn check_symbol(&self, s: usize) -> PyResult<()> {
        if s >= self.symbols.len() {
            return Err(PyValueError::new_err(format!(
                "unknown symbol index {s} (the data has {} symbols)",
                self.symbols.len()
            )));
        }
        Ok(())
    }

    fn start(&self) -> PyResult<()> {
        if self.ran.replace(true) {
            return Err(PyValueError::new_err(
                "this Engine has already run; create a new Engine for each run",
            ));
        }
        Ok(())
    }

    fn run_native<D: drivers::Driver + Send>(&self, py: Python<'_>, drv: &mut D) -> PyResult<()> {
        self.start()?;
        let bars = self.data.raw_bars();
        let mut guard = self.broker.borrow_mut();
        let broker: &mut Broker = &mut guard;
        // The GIL is released: the loop touches only Rust data and numpy buffers we hold.
        let r = py.detach(|| drivers::run(&bars, broker, drv));
        self.cursor.set(self.data.n_bars.saturating_sub(1));
        r.map_err(value_error)
    }

    fn where_(&self, t: usize) -> String {
        format!("bar {t} ({})", format_ts(self.data.ts_at(t)))
    }

    fn strategy_error(&self, py: Python<'_>, phase: &str, t: usize, e: PyErr) -> PyErr {
        let what = e
            .get_type(py)
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "an exception".to_string());
        let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
        let err = StrategyError::new_err(format!(
            "strategy {phase}() raised {what} at {}: {msg}",
            self.where_(t)
        ));
        err.set_cause(py, Some(e));
        err
    }

    fn submit_returned(
        &self,
        py: Python<'_>,
        normalize: &Bound<'_, PyAny>,
        ret: &Bound<'_, PyAny>,
        t: usize,
    ) -> PyResult<()> {
        let reqs = normalize
            .call1((ret,))
            .map_err(|e| self.strategy_error(py, "next", t, e))?;
        for item in reqs.try_iter()? {
            let (symbol, side, size, limit, tif): (usize, String, f64, Option<f64>, String) =
                item?.extract()?;
            self.submit(symbol, &side, size, limit, &tif)
                .map_err(|e| self.strategy_error(py, "next", t, e))?;
        }
        Ok(())
    }

    fn dispatch(&self, py: Python<'_>, cb: &Callbacks<'_>, t: usize) -> PyResult<()> {
        // Callbacks may submit or cancel orders, which appends new events: loop until quiet.
        loop {
            let events = self.broker.borrow_mut().drain_events();
            if events.is_empty() {
                return Ok(());
            }
            for ev in events {
                match ev {
                    Event::Order(i) => {
                        if let Some(f) = &cb.on_order {
                            let info = OrderInfo::from_order(
                                &self.broker.borrow().orders()[i],
                                &self.symbols,
                            );
                            f.call1((info,))
                                .map_err(|e| self.strategy_error(py, "on_order", t, e))?;
                        }
                    }
                    Event::Fill(i) => {
                        if let Some(f) = &cb.on_trade {
                            let info = {
                                let b = self.broker.borrow();
                                let fill = &b.fills()[i];
                                FillInfo::from_fill(fill, &self.symbols, self.data.ts_at(fill.bar))
                            };
                            f.call1((info,))
                                .map_err(|e| self.strategy_error(py, "on_trade", t, e))?;
                        }
                    }
                }
            }
        }
    }
}
