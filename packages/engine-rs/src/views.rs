//! Objects a Python strategy touches on every bar: `Line` (a series revealed up to "now"),
//! `BarView` (the current bar, reused for the whole run), and the order/fill snapshots.
//!
//! What a strategy can reach at bar t holds nothing after t and nothing it can write to:
//! every numpy array handed out is a read-only view of memory the engine owns, whose base
//! object is the `Line` or `BarView` it came from (neither exposes more than "now"), so
//! neither `.base` nor `flags.writeable = True` opens a way to the future or to the inputs.
//! `readonly` below holds the only unsafe code of the binding.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bt_engine_core::time::format_ts;
use bt_engine_core::types::OrderEvent;
use bt_engine_core::OrderStatus;
use bt_engine_core::{Fill, Order};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;

use crate::data::{PyData, FIELDS};

pub mod readonly {
    use numpy::ndarray::{ArrayView1, ArrayView2};
    use numpy::npyffi::{_PyArray_GET_ITEM_DATA, flags::NPY_ARRAY_WRITEABLE, PyArrayObject};
    use numpy::{Element, PyArray1, PyArray2, PyUntypedArrayMethods};
    use pyo3::prelude::*;

    fn freeze(a: *mut PyArrayObject) {
        // SAFETY: `a` is an array this module has just created, alive and not yet shared;
        // clearing the flag only removes write access.
        unsafe { (*_PyArray_GET_ITEM_DATA(a)).flags &= !NPY_ARRAY_WRITEABLE };
    }

    /// A read-only numpy view of `values`, kept alive by `owner`.
    ///
    /// Callers guarantee that `values` lives inside `owner` (or inside an object `owner` holds
    /// a strong reference to) and is never mutated or reallocated for `owner`'s lifetime: the
    /// engine's data and lines are written once, when built, and a finished run's records
    /// are never written again (an Engine runs once). Because `owner` exposes no
    /// writable buffer, numpy refuses to make the view writable again.
    pub fn vector<'py, T: Element>(
        owner: &Bound<'py, PyAny>,
        values: &[T],
    ) -> Bound<'py, PyArray1<T>> {
        let view = ArrayView1::from(values);
        // SAFETY: see the function's contract above.
        let a = unsafe { PyArray1::borrow_from_array(&view, owner.clone()) };
        freeze(a.as_array_ptr());
        a
    }

    /// A read-only (rows, cols) view of row-major `values`; same contract as [`vector`].
    pub fn matrix<'py, T: Element>(
        owner: &Bound<'py, PyAny>,
        values: &[T],
        rows: usize,
        cols: usize,
    ) -> Bound<'py, PyArray2<T>> {
        let view = ArrayView2::from_shape((rows, cols), values)
            .unwrap_or_else(|_| ArrayView2::from_shape((0, cols), &values[..0]).expect("empty"));
        // SAFETY: see `vector`.
        let a = unsafe { PyArray2::borrow_from_array(&view, owner.clone()) };
        freeze(a.as_array_ptr());
        a
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the first bar (on_start/init): full series may be read to build indicators.
    Before = 0,
    Running = 1,
    Done = 2,
}

/// "Now" for every line and bar view of one engine. Atomics rather than cells so that an
/// engine, its lines and its results may be used and dropped on any thread (relaxed loads
/// are plain loads; the GIL orders a strategy's reads after the loop's writes).
#[derive(Debug)]
pub struct Clock {
    t: AtomicUsize,
    phase: AtomicU8,
}

impl Clock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            t: AtomicUsize::new(0),
            phase: AtomicU8::new(Phase::Before as u8),
        })
    }
    #[inline]
    pub fn t(&self) -> usize {
        self.t.load(Relaxed)
    }
    #[inline]
    pub fn set_t(&self, t: usize) {
        self.t.store(t, Relaxed);
    }
    pub fn phase(&self) -> Phase {
        match self.phase.load(Relaxed) {
            0 => Phase::Before,
            1 => Phase::Running,
            _ => Phase::Done,
        }
    }
    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Relaxed);
    }
}

/// A series revealed up to the current bar: `line[-1]` is now, `line[-2]` the bar before,
/// `line[k]` (k >= 0) the k-th bar from the start; reading past "now" raises IndexError.
///
/// A line of coarser bars (a timeframe) has one value per coarse bar and a `reveal` map: at
/// fine bar t, its first `reveal[t]` values are visible (the coarse bars complete by t).
#[pyclass(frozen, module = "bt_engine._engine")]
pub struct Line {
    values: Vec<f64>,
    clock: Arc<Clock>,
    reveal: Option<Arc<Vec<u32>>>,
}

impl Line {
    pub fn new(values: Vec<f64>, clock: Arc<Clock>) -> Self {
        Self {
            values,
            clock,
            reveal: None,
        }
    }

    /// A line of coarse values; `reveal[t]` of them are visible at fine bar t.
    pub fn revealed(values: Vec<f64>, clock: Arc<Clock>, reveal: Arc<Vec<u32>>) -> Self {
        Self {
            values,
            clock,
            reveal: Some(reveal),
        }
    }

    /// How many values are visible at fine bar t.
    #[inline]
    fn visible_at(&self, t: usize) -> usize {
        match &self.reveal {
            None => (t + 1).min(self.values.len()),
            Some(r) => r.get(t).map_or(0, |&k| k as usize).min(self.values.len()),
        }
    }

    #[inline]
    fn visible(&self) -> usize {
        self.visible_at(self.clock.t())
    }

    /// The newest value visible at fine bar t (NaN when none is).
    #[inline]
    fn newest_at(&self, t: usize) -> f64 {
        match self.visible_at(t) {
            0 => f64::NAN,
            k => self.values[k - 1],
        }
    }

    /// (previous, current) of self and of other: what each showed on the previous bar and
    /// shows now; NaN before two bars exist, so that every comparison is false. For a coarse
    /// line "previous" is what was visible on the previous fine bar, so a crossing of coarse
    /// lines is reported once, on the fine bar where the crossing coarse bar appeared.
    fn last_two_with(&self, other: &Line) -> (f64, f64, f64, f64) {
        let now = self.clock.t();
        if now == 0 {
            return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
        }
        (
            self.newest_at(now - 1),
            self.newest_at(now),
            other.newest_at(now - 1),
            other.newest_at(now),
        )
    }
}

#[pymethods]
impl Line {
    fn __getitem__(&self, k: isize) -> PyResult<f64> {
        let visible = self.visible();
        let i = if k < 0 { visible as isize + k } else { k };
        if i < 0 || i as usize >= visible {
            let now = self.clock.t();
            return Err(PyIndexError::new_err(
                if k >= 0 && (k as usize) < self.values.len() {
                    format!("index {k} is in the future (current bar is {now})")
                } else {
                    format!(
                        "index {k} out of range: {visible} bars of history so far (next() \
                         starts on the first bar where every self.I indicator has a value; set \
                         self.warmup to the bars it needs, or check len(line) first)"
                    )
                },
            ));
        }
        Ok(self.values[i as usize])
    }

    fn __len__(&self) -> usize {
        self.visible()
    }

    /// The value on the current bar.
    #[getter]
    fn last(&self) -> PyResult<f64> {
        self.__getitem__(-1)
    }

    /// The last `n` values up to and including the current bar, as a read-only numpy array.
    fn window<'py>(slf: &Bound<'py, Self>, n: usize) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let this = slf.get();
        let end = this.visible();
        if n > end {
            return Err(PyIndexError::new_err(format!(
                "window({n}) needs {n} bars but only {end} are available so far (set \
                 self.warmup to at least {n}, or check len(line) first)"
            )));
        }
        Ok(readonly::vector(slf.as_any(), &this.values[end - n..end]))
    }

    /// Every value up to and including the current bar, as a read-only numpy array.
    #[getter]
    fn values<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyArray1<f64>> {
        let this = slf.get();
        readonly::vector(slf.as_any(), &this.values[..this.visible()])
    }

    /// The whole series, read-only: for computing indicators before the first bar (in
    /// on_start/init) and for analysis after the run; refused while the run is in progress,
    /// where it would reveal the future.
    fn full<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let this = slf.get();
        if this.clock.phase() == Phase::Running {
            return Err(PyValueError::new_err(
                "a line's full series is available only before the first bar (on_start/init) \
                 and after the run: during the run it would reveal future bars",
            ));
        }
        Ok(readonly::vector(slf.as_any(), &this.values))
    }

    /// True when this line crossed above `other` on the current bar: it was below on the
    /// previous bar and is above now (strict both times, like backtesting.py's `crossover`).
    /// One call instead of four reads: the common SMA-cross test costs one crossing.
    fn crossed_above(&self, other: PyRef<'_, Line>) -> bool {
        let (a1, a0, b1, b0) = self.last_two_with(&other);
        a1 < b1 && a0 > b0
    }

    /// True when this line crossed below `other` on the current bar (mirror of crossed_above).
    fn crossed_below(&self, other: PyRef<'_, Line>) -> bool {
        let (a1, a0, b1, b0) = self.last_two_with(&other);
        a1 > b1 && a0 < b0
    }

    /// A new line of `values` revealed as this one is (one value per bar of this line): how
    /// an indicator computed on a timeframe's line becomes a line of that timeframe.
    fn with_values(&self, array: &Bound<'_, PyArray1<f64>>) -> PyResult<Line> {
        let values = owned_values(array)?;
        if values.len() != self.values.len() {
            return Err(crate::errors::config_error(
                "array",
                format!(
                    "with_values needs one value per bar of this line: got {} values for {}",
                    values.len(),
                    self.values.len()
                ),
            ));
        }
        Ok(Line {
            values,
            clock: self.clock.clone(),
            reveal: self.reveal.clone(),
        })
    }

    fn __repr__(&self) -> String {
        format!("Line(len={}, of={})", self.visible(), self.values.len())
    }
}

/// The current bar, reused for the whole run. Single-symbol data gives floats
/// (`bar.close`); multi-symbol data gives read-only numpy rows (one value per symbol).
#[pyclass(frozen, module = "bt_engine._engine")]
pub struct BarView {
    pub data: Py<PyData>,
    pub clock: Arc<Clock>,
}

impl BarView {
    fn field<'py>(slf: &Bound<'py, Self>, f: usize) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let d = &this.data.get().inner;
        let (t, ns) = (this.clock.t(), d.n_symbols());
        let row = &d.field_at(f)[t * ns..(t + 1) * ns];
        if ns == 1 {
            return Ok(row[0].into_pyobject(py)?.into_any());
        }
        Ok(readonly::vector(slf.as_any(), row).into_any())
    }
}

#[pymethods]
impl BarView {
    /// Index of the current bar.
    #[getter]
    fn i(&self) -> usize {
        self.clock.t()
    }
    /// Timestamp of the current bar, int nanoseconds since the epoch (UTC).
    #[getter]
    fn ts(&self) -> i64 {
        self.data.get().inner.ts()[self.clock.t()]
    }
    /// ISO-8601 UTC text of the current bar's time.
    #[getter]
    fn time(&self) -> String {
        format_ts(self.ts())
    }
    #[getter]
    fn open<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::field(slf, 0)
    }
    #[getter]
    fn high<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::field(slf, 1)
    }
    #[getter]
    fn low<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::field(slf, 2)
    }
    #[getter]
    fn close<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::field(slf, 3)
    }
    #[getter]
    fn volume<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::field(slf, 4)
    }
    /// One field (or extra column) of one symbol (by index) on the current bar; NaN when it
    /// has no bar.
    fn get(&self, field: &str, symbol: usize) -> PyResult<f64> {
        let d = &self.data.get().inner;
        if symbol >= d.n_symbols() {
            return Err(PyIndexError::new_err(format!(
                "symbol index {symbol} out of range ({} symbols)",
                d.n_symbols()
            )));
        }
        let col = d.field(field).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown field {field:?}; expected one of {FIELDS:?} or an extra column"
            ))
        })?;
        Ok(col[self.clock.t() * d.n_symbols() + symbol])
    }
    /// The last `n` bars of `field` up to and including this one, every symbol: a read-only
    /// (rows, symbols) view of the engine's data, no copy (fewer rows near the start; NaN
    /// where a symbol had no bar). Cross-sectional strategies read their lookback from it.
    fn history<'py>(
        slf: &Bound<'py, Self>,
        field: &str,
        n: usize,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let this = slf.get();
        let d = &this.data.get().inner;
        let col = d.field(field).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown field {field:?}; expected one of {FIELDS:?} or an extra column"
            ))
        })?;
        let (t, ns) = (this.clock.t(), d.n_symbols());
        let rows = n.min(t + 1);
        let start = (t + 1 - rows) * ns;
        Ok(readonly::matrix(
            slf.as_any(),
            &col[start..(t + 1) * ns],
            rows,
            ns,
        ))
    }
    fn __repr__(&self) -> String {
        format!("Bar(i={}, time={})", self.i(), self.time())
    }
}

/// A snapshot of an order, as passed to `on_order` and listed by `open_orders`. In `on_order`,
/// `event` says what happened ("submitted", "accepted", "triggered", "partially_filled",
/// "filled", "cancelled", "expired", "modified", "rejected") and `filled` is the filled
/// quantity at that moment; `status` is the order's status now.
#[pyclass(frozen, get_all, module = "bt_engine._engine")]
pub struct OrderInfo {
    pub id: u64,
    pub event: Option<&'static str>,
    pub symbol: String,
    pub symbol_index: usize,
    pub side: &'static str,
    pub order_type: &'static str,
    pub tif: &'static str,
    pub size: f64,
    pub sizing: &'static str,
    pub amount: f64,
    pub filled: f64,
    pub limit_price: Option<f64>,
    pub stop_price: Option<f64>,
    pub triggered: bool,
    pub avg_price: Option<f64>,
    pub status: &'static str,
    pub reason_code: Option<&'static str>,
    pub reason: Option<String>,
    pub submitted_bar: usize,
    pub closed_bar: Option<usize>,
    pub parent_id: Option<u64>,
    pub oco_group: Option<u64>,
    pub commission: f64,
    pub tax: f64,
    /// Sent by the broker to liquidate the position on a margin call.
    pub liquidation: bool,
}

impl OrderInfo {
    /// The order as one of its events saw it: `status` is its status right after the event
    /// ("submitted" until it is accepted), `filled` its filled quantity then.
    pub fn from_event(o: &Order, symbols: &[String], what: OrderEvent, filled: f64) -> Self {
        let working = if filled > 0.0 {
            "partially_filled"
        } else {
            "accepted"
        };
        let status = match what {
            OrderEvent::Submitted if o.link.is_some() && o.status.is_open() => {
                if o.status == OrderStatus::Pending {
                    "pending"
                } else {
                    "submitted"
                }
            }
            OrderEvent::Submitted => "submitted",
            OrderEvent::Accepted => "accepted",
            OrderEvent::Triggered | OrderEvent::Modified if o.status == OrderStatus::Pending => {
                "pending"
            }
            OrderEvent::Triggered | OrderEvent::Modified => working,
            OrderEvent::PartiallyFilled => "partially_filled",
            OrderEvent::Filled => "filled",
            OrderEvent::Cancelled => "cancelled",
            OrderEvent::Expired => "expired",
            OrderEvent::Rejected => "rejected",
        };
        let ended = matches!(what, OrderEvent::Cancelled | OrderEvent::Rejected);
        let base = Self::from_order(o, symbols);
        Self {
            event: Some(what.as_str()),
            status,
            filled,
            reason_code: if ended { base.reason_code } else { None },
            reason: if ended { base.reason.clone() } else { None },
            ..base
        }
    }

    pub fn from_order(o: &Order, symbols: &[String]) -> Self {
        let some = |x: i64| u64::try_from(x).ok();
        Self {
            id: o.id,
            event: None,
            symbol: symbols[o.symbol].clone(),
            symbol_index: o.symbol,
            side: o.side.as_str(),
            order_type: o.kind.as_str(),
            tif: o.tif.as_str(),
            size: o.size,
            sizing: o.sizing.as_str(),
            amount: o.amount,
            filled: o.filled,
            limit_price: o.kind.limit_price().filter(|p| !p.is_nan()),
            stop_price: (!o.stop_price.is_nan()).then_some(o.stop_price),
            triggered: o.triggered,
            avg_price: (!o.avg_price.is_nan()).then_some(o.avg_price),
            status: o.status.as_str(),
            reason_code: o.reason_code(),
            reason: o.reason().map(str::to_owned),
            submitted_bar: o.submitted_bar,
            closed_bar: o.closed_bar,
            parent_id: some(crate::results::parent_id(o.link)),
            oco_group: some(crate::results::oco_group(o.link)),
            commission: o.commission,
            tax: o.tax,
            liquidation: o.liquidation,
        }
    }
}

#[pymethods]
impl OrderInfo {
    fn __repr__(&self) -> String {
        format!(
            "Order(id={}, {} {} {} {}, {}{})",
            self.id,
            self.side,
            self.size,
            self.symbol,
            self.order_type,
            match self.event {
                Some(e) => format!("event={e}, status={}", self.status),
                None => format!("status={}", self.status),
            },
            self.reason
                .as_ref()
                .map(|r| format!(", reason={r:?}"))
                .unwrap_or_default()
        )
    }
}

/// One execution, as passed to `on_trade`.
#[pyclass(frozen, get_all, module = "bt_engine._engine")]
pub struct FillInfo {
    pub order_id: u64,
    pub symbol: String,
    pub symbol_index: usize,
    pub bar: usize,
    pub ts: i64,
    pub side: &'static str,
    pub size: f64,
    pub price: f64,
    pub commission: f64,
    pub tax: f64,
    pub slippage: f64,
}

impl FillInfo {
    pub fn from_fill(f: &Fill, symbols: &[String], ts: i64) -> Self {
        Self {
            order_id: f.order_id,
            symbol: symbols[f.symbol].clone(),
            symbol_index: f.symbol,
            bar: f.bar,
            ts,
            side: f.side.as_str(),
            size: f.size,
            price: f.price,
            commission: f.commission,
            tax: f.tax,
            slippage: f.slippage,
        }
    }
}

#[pymethods]
impl FillInfo {
    fn __repr__(&self) -> String {
        format!(
            "Fill(order={}, {} {} {} @ {}, commission={})",
            self.order_id, self.side, self.size, self.symbol, self.price, self.commission
        )
    }
}

/// Copy a 1-D float array into engine-owned memory (contiguous or not).
pub fn owned_values(a: &Bound<'_, PyArray1<f64>>) -> PyResult<Vec<f64>> {
    let ro = a.try_readonly()?;
    Ok(match ro.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => ro.as_array().iter().copied().collect(),
    })
}
