//! Objects a Python strategy touches on every bar. They read the engine's arrays through raw
//! pointers kept valid by owning references to the numpy arrays, and a shared cursor that
//! says which bar is "now", so that no Python object is built per bar and no future value can
//! be read.

use std::cell::Cell;
use std::rc::Rc;

use bt_engine_core::time::format_ts;
use bt_engine_core::{Bars, Fill, Order};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PySlice;

/// The run's market data: owning references to the numpy arrays plus pointers into them.
pub struct MarketData {
    // Keep the arrays alive (and their buffers fixed: numpy refuses to resize an array that
    // other objects reference) for as long as the pointers below are used.
    pub ts_arr: Py<PyArray1<i64>>,
    pub fields: [Py<PyArray2<f64>>; 5],
    ts: *const i64,
    cols: [*const f64; 5],
    pub n_bars: usize,
    pub n_symbols: usize,
}

pub const FIELDS: [&str; 5] = ["open", "high", "low", "close", "volume"];

impl MarketData {
    pub fn new(
        ts: &Bound<'_, PyArray1<i64>>,
        fields: [&Bound<'_, PyArray2<f64>>; 5],
    ) -> PyResult<Self> {
        if !ts.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "timestamps must be a contiguous int64 array",
            ));
        }
        let n_bars = ts.len();
        let n_symbols = fields[3].shape()[1];
        for (name, a) in FIELDS.iter().zip(fields.iter()) {
            if !a.is_c_contiguous() {
                return Err(PyValueError::new_err(format!(
                    "column {name} must be a C-contiguous float64 array (time x symbols)"
                )));
            }
            if a.shape() != [n_bars, n_symbols] {
                return Err(PyValueError::new_err(format!(
                    "column {name} has shape {:?}, expected ({n_bars}, {n_symbols})",
                    a.shape()
                )));
            }
        }
        let md = Self {
            ts: ts.data() as *const i64,
            cols: fields.map(|a| a.data() as *const f64),
            ts_arr: ts.clone().unbind(),
            fields: fields.map(|a| a.clone().unbind()),
            n_bars,
            n_symbols,
        };
        let b = md.raw_bars();
        Bars::new(b.ts, b.open, b.high, b.low, b.close, b.volume, n_symbols)
            .map_err(|e| PyValueError::new_err(e.message))?;
        Ok(md)
    }

    /// Columns as slices. Sound because `self` owns references to the arrays (see above).
    pub fn raw_bars(&self) -> Bars<'_> {
        let cells = self.n_bars * self.n_symbols;
        let col = |i: usize| unsafe { std::slice::from_raw_parts(self.cols[i], cells) };
        Bars {
            ts: unsafe { std::slice::from_raw_parts(self.ts, self.n_bars) },
            open: col(0),
            high: col(1),
            low: col(2),
            close: col(3),
            volume: col(4),
            n_bars: self.n_bars,
            n_symbols: self.n_symbols,
        }
    }

    #[inline]
    pub fn value(&self, field: usize, t: usize, s: usize) -> f64 {
        unsafe { *self.cols[field].add(t * self.n_symbols + s) }
    }
    #[inline]
    pub fn ts_at(&self, t: usize) -> i64 {
        unsafe { *self.ts.add(t) }
    }
}

fn field_index(name: &str) -> PyResult<usize> {
    FIELDS.iter().position(|f| *f == name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown field {name:?}; expected one of {FIELDS:?}"
        ))
    })
}

/// A series revealed up to the current bar: `line[-1]` is now, `line[-2]` the bar before,
/// `line[k]` (k >= 0) the k-th bar from the start; reading past "now" raises IndexError.
#[pyclass(unsendable, module = "bt_engine._engine")]
pub struct Line {
    array: Py<PyArray1<f64>>,
    ptr: *const f64,
    len: usize,
    cursor: Rc<Cell<usize>>,
}

impl Line {
    pub fn new(array: &Bound<'_, PyArray1<f64>>, cursor: Rc<Cell<usize>>) -> PyResult<Self> {
        if !array.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "a Line needs a contiguous float64 array",
            ));
        }
        Ok(Self {
            ptr: array.data() as *const f64,
            len: array.len(),
            array: array.clone().unbind(),
            cursor,
        })
    }
}

#[pymethods]
impl Line {
    fn __getitem__(&self, k: isize) -> PyResult<f64> {
        let now = self.cursor.get();
        let visible = (now + 1).min(self.len);
        let i = if k < 0 { visible as isize + k } else { k };
        if i < 0 || i as usize >= visible {
            return Err(PyIndexError::new_err(
                if k >= 0 && (k as usize) < self.len {
                    format!("index {k} is in the future (current bar is {now})")
                } else {
                    format!("index {k} out of range: {visible} bars of history so far")
                },
            ));
        }
        Ok(unsafe { *self.ptr.add(i as usize) })
    }

    fn __len__(&self) -> usize {
        (self.cursor.get() + 1).min(self.len)
    }

    /// The value on the current bar.
    #[getter]
    fn last(&self) -> PyResult<f64> {
        self.__getitem__(-1)
    }

    /// The last `n` values up to and including the current bar, as a read-only numpy view.
    fn window<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let end = self.__len__();
        if n > end {
            return Err(PyIndexError::new_err(format!(
                "window({n}) needs {n} bars but only {end} are available so far"
            )));
        }
        self.slice(py, end - n, end)
    }

    /// Every value up to and including the current bar, as a read-only numpy view.
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.slice(py, 0, self.__len__())
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

    fn __repr__(&self) -> String {
        format!("Line(len={}, of={})", self.__len__(), self.len)
    }
}

impl Line {
    /// (previous, current) of self and of other; NaN before two bars exist, so that every
    /// comparison is false.
    fn last_two_with(&self, other: &Line) -> (f64, f64, f64, f64) {
        let now = self.cursor.get();
        let ok = now >= 1 && now < self.len && now < other.len;
        if !ok {
            return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
        }
        // Safety: now < len for both lines, checked above.
        unsafe {
            (
                *self.ptr.add(now - 1),
                *self.ptr.add(now),
                *other.ptr.add(now - 1),
                *other.ptr.add(now),
            )
        }
    }

    fn slice<'py>(&self, py: Python<'py>, a: usize, b: usize) -> PyResult<Bound<'py, PyAny>> {
        let view = self
            .array
            .bind(py)
            .get_item(PySlice::new(py, a as isize, b as isize, 1))?;
        view.getattr("flags")?.setattr("writeable", false)?;
        Ok(view)
    }
}

/// The current bar, reused for the whole run. Single-symbol data gives floats
/// (`bar.close`); multi-symbol data gives read-only numpy rows (one value per symbol).
#[pyclass(unsendable, module = "bt_engine._engine")]
pub struct BarView {
    pub data: Rc<MarketData>,
    pub cursor: Rc<Cell<usize>>,
}

impl BarView {
    fn field<'py>(&self, py: Python<'py>, f: usize) -> PyResult<Bound<'py, PyAny>> {
        let t = self.cursor.get();
        if self.data.n_symbols == 1 {
            return Ok(self.data.value(f, t, 0).into_pyobject(py)?.into_any());
        }
        let row = self.data.fields[f].bind(py).get_item(t)?;
        row.getattr("flags")?.setattr("writeable", false)?;
        Ok(row)
    }
}

#[pymethods]
impl BarView {
    /// Index of the current bar.
    #[getter]
    fn i(&self) -> usize {
        self.cursor.get()
    }
    /// Timestamp of the current bar, int nanoseconds since the epoch (UTC).
    #[getter]
    fn ts(&self) -> i64 {
        self.data.ts_at(self.cursor.get())
    }
    /// ISO-8601 UTC text of the current bar's time.
    #[getter]
    fn time(&self) -> String {
        format_ts(self.ts())
    }
    #[getter]
    fn open<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, 0)
    }
    #[getter]
    fn high<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, 1)
    }
    #[getter]
    fn low<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, 2)
    }
    #[getter]
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, 3)
    }
    #[getter]
    fn volume<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, 4)
    }
    /// One field of one symbol (by index) on the current bar; NaN when it has no bar.
    fn get(&self, field: &str, symbol: usize) -> PyResult<f64> {
        if symbol >= self.data.n_symbols {
            return Err(PyIndexError::new_err(format!(
                "symbol index {symbol} out of range ({} symbols)",
                self.data.n_symbols
            )));
        }
        Ok(self
            .data
            .value(field_index(field)?, self.cursor.get(), symbol))
    }
    fn __repr__(&self) -> String {
        format!("Bar(i={}, time={})", self.i(), self.time())
    }
}

/// A snapshot of an order, as passed to `on_order` and listed by `open_orders`.
#[pyclass(frozen, get_all, module = "bt_engine._engine")]
pub struct OrderInfo {
    pub id: u64,
    pub symbol: String,
    pub symbol_index: usize,
    pub side: &'static str,
    pub order_type: &'static str,
    pub tif: &'static str,
    pub size: f64,
    pub filled: f64,
    pub limit_price: Option<f64>,
    pub avg_price: Option<f64>,
    pub status: &'static str,
    pub reason: Option<String>,
    pub submitted_bar: usize,
    pub closed_bar: Option<usize>,
}

impl OrderInfo {
    pub fn from_order(o: &Order, symbols: &[String]) -> Self {
        Self {
            id: o.id,
            symbol: symbols[o.symbol].clone(),
            symbol_index: o.symbol,
            side: o.side.as_str(),
            order_type: o.kind.as_str(),
            tif: o.tif.as_str(),
            size: o.size,
            filled: o.filled,
            limit_price: o.kind.limit_price(),
            avg_price: if o.avg_price.is_nan() {
                None
            } else {
                Some(o.avg_price)
            },
            status: o.status.as_str(),
            reason: o.reason.clone(),
            submitted_bar: o.submitted_bar,
            closed_bar: o.closed_bar,
        }
    }
}

#[pymethods]
impl OrderInfo {
    fn __repr__(&self) -> String {
        format!(
            "Order(id={}, {} {} {} {}, status={}{})",
            self.id,
            self.side,
            self.size,
            self.symbol,
            self.order_type,
            self.status,
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
