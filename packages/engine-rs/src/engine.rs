//! The `Engine` Python class: one run over one `Data` handle with one run configuration.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bt_engine_core::drivers::{self, RunOptions, Signals, SmaCross, Weights};
use bt_engine_core::{AccountKind, Broker, Instrument};
use numpy::{PyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{self, PyOrderRequest};
use crate::data::{PyData, FIELDS};
use crate::errors::{config_error, to_py};
use crate::py_driver::{Callbacks, PyDriver};
use crate::results;
use crate::views::{owned_values, readonly, BarView, Clock, Line, OrderInfo, Phase};

/// One backtest over one data set. Create it with a `Data` handle and a run configuration
/// (a dict of settings), then call exactly one of `run_strategy`, `run_signals`,
/// `run_weights`, `run_sma_cross`.
///
/// Nothing pins an engine to a thread: it may be created, run, read and dropped on any
/// thread (a thread pool of runs over one shared `Data` needs exactly that).
#[pyclass(frozen, module = "bt_engine._engine")]
pub struct Engine {
    data: Py<PyData>,
    broker: Mutex<Broker>,
    /// The broker the bar loop has lent to the Python driver while Python code runs in it
    /// (null otherwise). See `with_live`.
    live: AtomicPtr<Broker>,
    clock: Arc<Clock>,
    ran: AtomicBool,
}

impl Engine {
    fn inner(&self) -> &bt_engine_core::BarData {
        &self.data.get().inner
    }

    pub fn ts_at(&self, t: usize) -> i64 {
        self.inner().ts()[t]
    }

    pub fn set_now(&self, t: usize) {
        self.clock.set_t(t);
    }

    /// The engine's own broker; an error (never a wait: the caller may hold the GIL that a
    /// native run needs to finish) while a run holds it.
    fn own_broker(&self) -> PyResult<MutexGuard<'_, Broker>> {
        self.broker.try_lock().map_err(|_| {
            config_error(
                "engine",
                "the engine is running on another thread; read it after the run".into(),
            )
        })
    }

    /// Run `f` with the broker: the one the loop lent (while a run calls into Python), or
    /// the engine's own.
    pub fn with_broker<R>(&self, f: impl FnOnce(&mut Broker) -> R) -> PyResult<R> {
        let p = self.live.load(Ordering::Acquire);
        if p.is_null() {
            Ok(f(&mut *self.own_broker()?))
        } else {
            // SAFETY: `live` is set only by `with_live` for the duration of a call in which
            // the lender does not use its `&mut Broker`; Python code reaches it only with the
            // GIL held, so accesses never overlap; and `f` is Rust code that does not call
            // back into Python, so calls never nest.
            Ok(f(unsafe { &mut *p }))
        }
    }

    /// Lend `broker` to Python code (and `with_broker`) for the duration of `f`.
    pub fn with_live<R>(&self, broker: &mut Broker, f: impl FnOnce() -> R) -> R {
        let prev = self.live.swap(broker as *mut Broker, Ordering::AcqRel);
        let r = f();
        self.live.store(prev, Ordering::Release);
        r
    }

    fn start(&self) -> PyResult<()> {
        if self.ran.swap(true, Ordering::AcqRel) {
            return Err(config_error(
                "engine",
                "this Engine has already run; create a new Engine for each run".into(),
            ));
        }
        Ok(())
    }

    fn check_symbol(&self, s: usize) -> PyResult<()> {
        let n = self.inner().n_symbols();
        if s >= n {
            return Err(to_py(
                bt_engine_core::EngineError::order(format!(
                    "unknown symbol index {s} (the data has {n} symbols)"
                ))
                .with_field("symbol_index", s.to_string()),
            ));
        }
        Ok(())
    }

    fn run_native<D: drivers::Driver + Send>(&self, py: Python<'_>, drv: &mut D) -> PyResult<()> {
        self.start()?;
        let bars = self.inner().bars();
        let mut guard = self.own_broker()?;
        let broker: &mut Broker = &mut guard;
        self.clock.set_phase(Phase::Running);
        // The GIL is released: the loop touches only Rust-owned data.
        let r = py.detach(|| drivers::run(&bars, broker, drv));
        self.finish();
        r.map_err(to_py)
    }

    /// A per-bar record of the broker as numpy: once the run is done the record never
    /// changes again (an Engine runs once), so the array views it in place; before that, a copy.
    fn curve<'py>(
        slf: &Bound<'py, Self>,
        f: impl Fn(&Broker) -> &[f64],
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let this = slf.get();
        let b = this.own_broker()?;
        let values = f(&b);
        Ok(if this.clock.phase() == Phase::Done {
            readonly::vector(slf.as_any(), values)
        } else {
            PyArray1::from_slice(slf.py(), values)
        })
    }

    fn finish(&self) {
        self.clock.set_t(self.inner().n_bars().saturating_sub(1));
        self.clock.set_phase(Phase::Done);
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (data, config = None, *, exposure_curve = true))]
    fn new(
        data: Py<PyData>,
        config: Option<&Bound<'_, PyDict>>,
        exposure_curve: bool,
    ) -> PyResult<Self> {
        let cfg = convert::config(config)?;
        let instruments = data
            .get()
            .inner
            .symbols()
            .iter()
            .map(Instrument::new)
            .collect();
        let mut broker = Broker::with_instruments(cfg, instruments).map_err(to_py)?;
        broker.keep_exposure_curve(exposure_curve);
        Ok(Self {
            data,
            broker: Mutex::new(broker),
            live: AtomicPtr::new(std::ptr::null_mut()),
            clock: Clock::new(),
            ran: AtomicBool::new(false),
        })
    }

    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyData> {
        self.data.clone_ref(py)
    }
    #[getter]
    fn n_bars(&self) -> usize {
        self.inner().n_bars()
    }
    #[getter]
    fn symbols(&self) -> Vec<String> {
        self.inner().symbols().to_vec()
    }
    /// The run configuration the engine validated, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.with_broker(|b| b.config().clone())?;
        let c = &c;
        let d = PyDict::new(py);
        d.set_item("cash", c.cash)?;
        d.set_item("commission", c.commission_rate)?;
        d.set_item("commission_min", c.commission_min)?;
        d.set_item("commission_fixed", c.commission_fixed)?;
        d.set_item("slippage_bps", c.slippage_bps)?;
        d.set_item("fill_on", convert::fill_on_name(c.fill_on))?;
        d.set_item("bar_path", convert::bar_path_name(c.bar_path))?;
        d.set_item("limit_fill", convert::limit_fill_name(c.limit_fill))?;
        d.set_item("volume_limit", c.volume_limit)?;
        d.set_item(
            "fees",
            c.fee_schedule()
                .lines()
                .iter()
                .map(|l| l.name.clone())
                .collect::<Vec<_>>(),
        )?;
        d.set_item(
            "day_offset_hours",
            c.day_offset_ns as f64 / 3_600_000_000_000.0,
        )?;
        let (im, mm) = c.margins();
        d.set_item(
            "account",
            match c.account {
                AccountKind::Cash => "cash",
                AccountKind::Margin => "margin",
            },
        )?;
        d.set_item("initial_margin", im)?;
        d.set_item("maintenance_margin", mm)?;
        d.set_item("max_leverage", c.max_leverage)?;
        d.set_item("allow_short", c.allow_short)?;
        d.set_item("borrow_rate", c.borrow_rate)?;
        Ok(d)
    }

    /// May symbol `symbol` (its index) be sold short in this run?
    fn shortable(&self, symbol: usize) -> PyResult<bool> {
        self.check_symbol(symbol)?;
        self.with_broker(|b| b.instruments()[symbol].shortable)
    }

    /// A series (one value per bar, copied into the engine) revealed bar by bar.
    fn line(&self, array: &Bound<'_, PyArray1<f64>>) -> PyResult<Line> {
        let n = self.inner().n_bars();
        let values = owned_values(array)?;
        if values.len() != n {
            return Err(config_error(
                "array",
                format!(
                    "a line needs one value per bar: got {} values for {n} bars",
                    values.len()
                ),
            ));
        }
        Ok(Line::new(values, self.clock.clone()))
    }

    /// A data field (`open` ... `volume` or an extra column) of symbol `symbol` as a line.
    fn data_line(&self, field: &str, symbol: usize) -> PyResult<Line> {
        self.check_symbol(symbol)?;
        let d = self.inner();
        let col = d.field(field).ok_or_else(|| {
            config_error(
                "field",
                format!("unknown field {field:?}; expected one of {FIELDS:?} or an extra column"),
            )
        })?;
        let ns = d.n_symbols();
        let values = col.iter().skip(symbol).step_by(ns).copied().collect();
        Ok(Line::new(values, self.clock.clone()))
    }

    /// Field `field` of symbol `symbol` of a timeframe built on this engine's data, as a line
    /// that shows a coarse bar from the fine bar on which it is complete.
    fn timeframe_line(
        &self,
        timeframe: PyRef<'_, crate::resample::Timeframe>,
        field: &str,
        symbol: usize,
    ) -> PyResult<Line> {
        if !timeframe.data.is(&self.data) {
            return Err(config_error(
                "timeframe",
                "the timeframe was built on other data than this engine's".into(),
            ));
        }
        let values = timeframe.series(symbol)?.field(field).ok_or_else(|| {
            config_error(
                "field",
                format!("unknown timeframe field {field:?}; expected one of {FIELDS:?}"),
            )
        })?;
        Ok(Line::revealed(
            values.to_vec(),
            self.clock.clone(),
            timeframe.reveal[symbol].clone(),
        ))
    }

    /// The reusable current-bar object passed to `next`.
    fn bar_view(&self, py: Python<'_>) -> BarView {
        BarView {
            data: self.data.clone_ref(py),
            clock: self.clock.clone(),
        }
    }

    // ----- the ledger, as the strategy sees it -------------------------------------------

    #[getter]
    fn cash(&self) -> PyResult<f64> {
        self.with_broker(|b| b.cash())
    }
    #[getter]
    fn equity(&self) -> PyResult<f64> {
        self.with_broker(|b| b.equity())
    }
    #[getter]
    fn bar_index(&self) -> usize {
        self.clock.t()
    }
    fn position(&self, symbol: usize) -> PyResult<f64> {
        self.check_symbol(symbol)?;
        self.with_broker(|b| b.position(symbol))
    }
    /// Units of `symbol` a sell may take now: the long position less the units T+n still
    /// locks.
    fn sellable(&self, symbol: usize) -> PyResult<f64> {
        self.check_symbol(symbol)?;
        self.with_broker(|b| b.sellable(symbol))
    }
    /// The last close seen of `symbol` (NaN before its first bar).
    fn last_price(&self, symbol: usize) -> PyResult<f64> {
        self.check_symbol(symbol)?;
        self.with_broker(|b| b.last_prices()[symbol])
    }
    fn avg_cost(&self, symbol: usize) -> PyResult<f64> {
        self.check_symbol(symbol)?;
        self.with_broker(|b| b.avg_cost(symbol))
    }
    fn positions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.with_broker(|b| PyArray1::from_slice(py, b.positions()))
    }
    fn open_orders(&self) -> PyResult<Vec<OrderInfo>> {
        let symbols = self.inner().symbols();
        self.with_broker(|b| {
            b.active_order_ids()
                .filter_map(|id| b.order(id))
                .map(|o| OrderInfo::from_order(o, symbols))
                .collect()
        })
    }
    fn order(&self, id: u64) -> PyResult<OrderInfo> {
        let symbols = self.inner().symbols();
        self.with_broker(|b| b.order(id).map(|o| OrderInfo::from_order(o, symbols)))?
            .ok_or_else(|| {
                to_py(
                    bt_engine_core::EngineError::order(format!("unknown order id {id}"))
                        .with_field("order_id", id.to_string()),
                )
            })
    }

    /// Submit an order; returns its id. Errors (OrderError) name the bad argument.
    fn submit(&self, request: PyRef<'_, PyOrderRequest>) -> PyResult<u64> {
        let req = request.inner;
        self.with_broker(|b| b.submit(req))?.map_err(to_py)
    }

    /// Cancel a working or pending order; False when it had already filled, expired or been
    /// cancelled. Cancelling an entry that has not filled cancels its bracket exits.
    fn cancel(&self, id: u64) -> PyResult<bool> {
        self.with_broker(|b| b.cancel(id))?.map_err(to_py)
    }

    /// Replace a working or pending order's limit price, stop price or size.
    #[pyo3(signature = (id, *, limit = None, stop = None, size = None))]
    fn modify(
        &self,
        id: u64,
        limit: Option<f64>,
        stop: Option<f64>,
        size: Option<f64>,
    ) -> PyResult<()> {
        self.with_broker(|b| b.modify(id, limit, stop, size))?
            .map_err(to_py)
    }

    /// Link open orders one-cancels-other (a fill of any cancels the others); the group id.
    fn link_oco(&self, ids: Vec<u64>) -> PyResult<u64> {
        self.with_broker(|b| b.link_oco(&ids))?.map_err(to_py)
    }

    // ----- drivers ---------------------------------------------------------------------

    /// Drive a Python strategy through the core's bar loop: `next(bar)` once per bar from bar
    /// `start` on (earlier bars still fill orders and mark equity), `on_order(order)` and
    /// `on_trade(fill)` on events when given, `progress(done)` every `progress_every` bars;
    /// `normalize(ret)` turns a non-None return value of `next` into OrderRequests. More
    /// than `max_events_per_bar` events within one bar stop the run with a StrategyError.
    #[pyo3(signature = (next, bar, normalize, on_order = None, on_trade = None, progress = None, progress_every = 0, start = 0, max_events_per_bar = 100_000))]
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
        max_events_per_bar: usize,
    ) -> PyResult<()> {
        self.start()?;
        let d = self.inner();
        let bars = d.bars();
        let mut drv = PyDriver {
            engine: self,
            cb: Callbacks {
                next,
                normalize,
                on_order,
                on_trade,
                progress: progress.filter(|_| progress_every > 0),
            },
            args: PyTuple::new(py, [bar])?,
            symbols: d.symbols(),
            ts: d.ts(),
            max_events_per_bar,
            events_seen: Cell::new(0),
            events_bar: Cell::new(usize::MAX),
            error: None,
        };
        let opts = RunOptions {
            start,
            progress_every,
        };
        let r = {
            let mut guard = self.own_broker()?;
            self.clock.set_phase(Phase::Running);
            drivers::run_with(&bars, &mut guard, &mut drv, opts)
        };
        self.finish();
        match (r, drv.error.take()) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(to_py(e)),
            (Ok(()), None) => Ok(()),
        }
    }

    /// Vectorized entries/exits (bool, time x symbols): the whole loop runs in Rust. An entry
    /// buys `size` units, cash value or fraction of equity per `sizing`; a short entry sells
    /// as much (shorting allowed), a short exit buys the short back.
    #[pyo3(signature = (entries, exits, size, sizing = "units", short_entries = None, short_exits = None))]
    #[allow(clippy::too_many_arguments)]
    fn run_signals(
        &self,
        py: Python<'_>,
        entries: PyReadonlyArray2<'_, bool>,
        exits: PyReadonlyArray2<'_, bool>,
        size: f64,
        sizing: &str,
        short_entries: Option<PyReadonlyArray2<'_, bool>>,
        short_exits: Option<PyReadonlyArray2<'_, bool>>,
    ) -> PyResult<()> {
        let (e, x) = (
            contiguous(&entries, "entries")?,
            contiguous(&exits, "exits")?,
        );
        let se = short_entries
            .as_ref()
            .map(|a| contiguous(a, "short_entries"))
            .transpose()?;
        let sx = short_exits
            .as_ref()
            .map(|a| contiguous(a, "short_exits"))
            .transpose()?;
        let mut drv = Signals {
            entries: e,
            exits: x,
            size,
            sizing: convert::sizing(sizing)?,
            short_entries: se,
            short_exits: sx,
        };
        drv.validate(&self.inner().bars(), &*self.own_broker()?)
            .map_err(to_py)?;
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
        drv.validate(&self.inner().bars(), &*self.own_broker()?)
            .map_err(to_py)?;
        self.run_native(py, &mut drv)
    }

    /// The built-in SMA crossover strategy, entirely in Rust; entries buy `size` units, cash
    /// value or fraction of equity per `sizing`.
    #[pyo3(signature = (fast = 10, slow = 30, size = 1.0, sizing = "units"))]
    fn run_sma_cross(
        &self,
        py: Python<'_>,
        fast: usize,
        slow: usize,
        size: f64,
        sizing: &str,
    ) -> PyResult<()> {
        let sizing = convert::sizing(sizing)?;
        let mut drv = SmaCross::new(&self.inner().bars(), fast, slow, size)
            .map_err(to_py)?
            .with_sizing(sizing);
        self.run_native(py, &mut drv)
    }

    // ----- results (columnar) ----------------------------------------------------------

    /// Equity per bar (read-only; after the run, a view of the engine's record, not a copy).
    fn equity_curve<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Self::curve(slf, |b| b.equity_curve())
    }
    /// Gross exposure per bar as a fraction of equity (read-only, like `equity_curve`).
    fn exposure_curve<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        if !slf.get().own_broker()?.keeps_exposure_curve() {
            return Err(config_error(
                "exposure_curve",
                "this engine keeps no exposure curve (Engine(..., exposure_curve=False)); \
                 exposure_summary() has its figures"
                    .to_string(),
            ));
        }
        Self::curve(slf, |b| b.exposure_curve())
    }
    /// The exposure curve's figures, whether or not the curve is kept: (bars, numpy's sum of
    /// the curve, values other than 0, the first value that is NaN, infinite or negative as
    /// (bar, value) or None).
    fn exposure_summary(&self) -> PyResult<results::ExposureFigures> {
        self.with_broker(|b| results::exposure_figures(b.exposure_summary()))?
    }
    /// Fills as columns: order_id, symbol (index), bar, ts, side, size, price, commission, slippage.
    fn fills<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_broker(|b| results::fills(py, b.fills(), self.inner().ts()))?
    }
    /// Commission, tax and slippage of each fill (the `fills` columns the stats read).
    fn fill_costs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_broker(|b| results::fill_costs(py, b.fills()))?
    }
    /// Every order with its final status, as columns (see `results::orders`).
    fn order_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_broker(|b| results::orders(py, b.orders()))?
    }
    /// Every order with its final status, as objects.
    fn orders(&self) -> PyResult<Vec<OrderInfo>> {
        let symbols = self.inner().symbols();
        self.with_broker(|b| {
            b.orders()
                .iter()
                .map(|o| OrderInfo::from_order(o, symbols))
                .collect()
        })
    }
    /// Rejected orders by reason code: {code: (count, first message)}, without building the
    /// order table.
    fn rejections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        results::rejections(py, self.own_broker()?.orders())
    }
    /// How many orders the run made.
    #[getter]
    fn n_orders(&self) -> PyResult<usize> {
        self.with_broker(|b| b.orders().len())
    }
    /// Closed round trips (FIFO lots) as columns.
    fn trades<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_broker(|b| results::trades(py, b.trades(), self.inner().ts()))?
    }
    /// Final per-symbol ledger: position, avg_cost, last_price, realized (net of costs),
    /// unrealized, commission, tax, slippage, borrow; plus cash and equity.
    fn ledger<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_broker(|b| results::ledger(py, b))?
    }
    /// Margin calls as columns (see `results::margin_calls`).
    fn margin_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_broker(|b| results::margin_calls(py, b.margin_calls(), self.inner().ts()))?
    }
    /// The timestamps of the run's bars (read-only).
    #[getter]
    fn ts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let data = self.data.bind(py);
        readonly::vector(data.as_any(), data.get().inner.ts())
    }
}

fn contiguous<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray2<'_, T>,
    name: &'static str,
) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| {
        config_error(
            name,
            format!("{name} must be a C-contiguous array (time x symbols)"),
        )
    })
}
