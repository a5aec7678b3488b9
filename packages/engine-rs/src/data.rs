//! `Data`: the validated, reusable market-data handle. Built once from per-symbol numpy
//! columns (validated in one pass, aligned, copied into memory the engine owns), then shared
//! by any number of runs, on any thread; its arrays are read-only views nobody can write to.

use bt_engine_core::{BarData, Column, SharedValues, SymbolInput, Values};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyDictMethods};
use std::sync::Arc;

use crate::errors::{config_error, to_py};
use crate::views::readonly;

pub const FIELDS: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// A column from Python: borrowed when contiguous, copied otherwise.
enum Col<'py, T: numpy::Element> {
    Borrowed(PyReadonlyArray1<'py, T>),
    Copied(Vec<T>),
}

impl<'py, T: numpy::Element + Copy> Col<'py, T> {
    fn new(a: PyReadonlyArray1<'py, T>) -> Self {
        if a.as_slice().is_ok() {
            Col::Borrowed(a)
        } else {
            Col::Copied(a.as_array().iter().copied().collect())
        }
    }
    fn slice(&self) -> &[T] {
        match self {
            // Checked contiguous in `new`.
            Col::Borrowed(a) => a.as_slice().unwrap_or(&[]),
            Col::Copied(v) => v,
        }
    }
}

struct SymbolCols<'py> {
    ts: Col<'py, i64>,
    fields: Vec<Col<'py, f64>>,
    extra: Vec<(String, Col<'py, f64>)>,
    rows: Option<Col<'py, i64>>,
}

/// A numpy array's memory, read in place: the reference keeps the array alive, and
/// [`frozen`] took it only when nobody can write to that memory.
struct NumpyValues<T> {
    _array: Py<PyAny>,
    ptr: *const T,
    len: usize,
}

// SAFETY: the values live in the array that `_array` keeps alive, and nothing can write to
// them (see `never_writable`): reading them from any thread is sound. PyO3 defers the release of `_array` until a thread holds the GIL.
unsafe impl<T> Send for NumpyValues<T> {}
unsafe impl<T> Sync for NumpyValues<T> {}

impl<T: 'static> SharedValues<T> for NumpyValues<T> {
    fn values(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` is the start of the `len` values of an aligned, C-contiguous array
        // (checked in `frozen`) that lives as long as `self` and is never written (see
        // above).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// `a`'s memory shared in place: `a` must be C-contiguous and read-only for good (see
/// [`never_writable`]: Ray's object store, another Data's fields), since the engine reads
/// it on any thread, unsynchronised.
fn frozen<T: numpy::Element + 'static>(
    name: &'static str,
    a: &Bound<'_, PyAny>,
    ptr: *const T,
    len: usize,
) -> PyResult<Values<T>> {
    let flags = a.getattr("flags")?;
    let contiguous = flags.getattr("c_contiguous")?.extract::<bool>()?;
    let aligned = flags.getattr("aligned")?.extract::<bool>()?;
    if !(contiguous && aligned) {
        return Err(config_error(
            name,
            format!("{name} must be C-contiguous and aligned"),
        ));
    }
    if !never_writable(a)? {
        return Err(config_error(
            name,
            format!(
                "{name} is writable memory (its owner can make it writeable); Data.shared \
                 reads only memory nobody can write to: use Data(...), which copies"
            ),
        ));
    }
    Ok(Values::Shared(Arc::new(NumpyValues {
        _array: a.clone().unbind(),
        ptr,
        len,
    })))
}

/// Whether nobody can ever write to `a`'s memory. numpy lets an array's flag be set back to
/// writeable when the memory belongs to a numpy array (its owner's flag can be flipped) or
/// to an object exporting a writable buffer; it cannot otherwise (a read-only buffer, such
/// as Ray's object store, or an object without a buffer, such as a Data).
fn never_writable(a: &Bound<'_, PyAny>) -> PyResult<bool> {
    let mut last = a.clone();
    loop {
        let base = last.getattr("base")?;
        if base.is_none() {
            return Ok(false); // `last` owns the memory
        }
        if base.cast::<PyUntypedArray>().is_ok() {
            last = base;
            continue;
        }
        let memoryview = a.py().import("builtins")?.getattr("memoryview")?;
        return match memoryview.call1((&base,)) {
            Ok(view) => view.getattr("readonly")?.extract::<bool>(),
            Err(_) => Ok(true), // no buffer: numpy has nothing to write through
        };
    }
}

#[pyclass(frozen, module = "bt_engine._engine", name = "Data")]
pub struct PyData {
    pub inner: BarData,
}

#[pymethods]
impl PyData {
    /// `symbols[i]`'s bars are `columns[i]`: a dict with `ts` (int64 ns since the epoch, UTC)
    /// and `open, high, low, close, volume` (float64); any other key is an extra float
    /// column (e.g. `pre_close`). `labels[i]` names the source in messages and `rows[i]` maps
    /// each bar to its row in the user's input.
    #[new]
    #[pyo3(signature = (symbols, columns, *, labels = None, rows = None))]
    fn new<'py>(
        py: Python<'py>,
        symbols: Vec<String>,
        columns: Vec<Bound<'py, PyDict>>,
        labels: Option<Vec<String>>,
        rows: Option<Vec<Option<PyReadonlyArray1<'py, i64>>>>,
    ) -> PyResult<Self> {
        let n = symbols.len();
        if columns.len() != n {
            return Err(config_error(
                "columns",
                format!("{} column sets for {n} symbols", columns.len()),
            ));
        }
        let labels = labels.unwrap_or_else(|| symbols.clone());
        if labels.len() != n {
            return Err(config_error(
                "labels",
                format!("{} labels for {n} symbols", labels.len()),
            ));
        }
        let mut rows = rows.unwrap_or_default();
        if !rows.is_empty() && rows.len() != n {
            return Err(config_error(
                "rows",
                format!("{} row maps for {n} symbols", rows.len()),
            ));
        }
        rows.resize_with(n, || None);
        let mut cols = Vec::with_capacity(n);
        for ((d, label), r) in columns.iter().zip(&labels).zip(rows) {
            let get = |k: &str| -> PyResult<Bound<'py, PyAny>> {
                d.get_item(k)?.ok_or_else(|| {
                    PyKeyError::new_err(format!("{label}: no column {k:?} in the engine input"))
                })
            };
            let ts = Col::new(get("ts")?.extract::<PyReadonlyArray1<i64>>()?);
            let fields = FIELDS
                .iter()
                .map(|f| Ok(Col::new(get(f)?.extract::<PyReadonlyArray1<f64>>()?)))
                .collect::<PyResult<Vec<_>>>()?;
            let mut extra = Vec::new();
            for (k, v) in d.iter() {
                let k: String = k.extract()?;
                if k != "ts" && !FIELDS.contains(&k.as_str()) {
                    extra.push((k, Col::new(v.extract::<PyReadonlyArray1<f64>>()?)));
                }
            }
            cols.push(SymbolCols {
                ts,
                fields,
                extra,
                rows: r.map(Col::new),
            });
        }
        let extras: Vec<Vec<(&str, &[f64])>> = cols
            .iter()
            .map(|c| {
                c.extra
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.slice()))
                    .collect()
            })
            .collect();
        let inputs: Vec<SymbolInput> = cols
            .iter()
            .zip(&symbols)
            .zip(&labels)
            .zip(&extras)
            .map(|(((c, name), label), extra)| SymbolInput {
                name,
                label,
                ts: c.ts.slice(),
                open: c.fields[0].slice(),
                high: c.fields[1].slice(),
                low: c.fields[2].slice(),
                close: c.fields[3].slice(),
                volume: c.fields[4].slice(),
                rows: c.rows.as_ref().map(|r| r.slice()),
                extra,
            })
            .collect();
        let inner = py
            .detach(|| BarData::from_symbols(&inputs))
            .map_err(to_py)?;
        Ok(Self { inner })
    }

    /// Data over columns that are already aligned, read in place instead of copied: `ts`
    /// (int64 ns since the epoch, UTC, one per bar) and `fields` (`open, high, low, close,
    /// volume`, and any extra columns, each a float64 array of shape (bars, symbols), NaN
    /// where a symbol has no bar), as `Data.field` returns them. The timestamps and prices
    /// must be C-contiguous memory that numpy will not make writeable, such as arrays from
    /// Ray's object store (one copy shared by every worker process of a machine) or another
    /// Data's fields; extra columns are copied. Validated as the loops read them.
    #[staticmethod]
    fn shared<'py>(
        py: Python<'py>,
        symbols: Vec<String>,
        ts: Bound<'py, PyAny>,
        fields: Bound<'py, PyDict>,
    ) -> PyResult<Self> {
        let ts_arr = ts
            .cast::<PyArray1<i64>>()
            .map_err(|_| config_error("ts", "ts must be a 1-D int64 numpy array".to_string()))?;
        let n = ts_arr.len();
        let ns = symbols.len();
        let ts = frozen("ts", &ts, ts_arr.data() as *const i64, n)?;
        let matrix = |name: &str, a: &Bound<'py, PyAny>| -> PyResult<Bound<'py, PyArray2<f64>>> {
            let m = a.cast::<PyArray2<f64>>().map_err(|_| {
                config_error(
                    "fields",
                    format!("field {name} must be a 2-D float64 numpy array"),
                )
            })?;
            if m.shape() != [n, ns] {
                return Err(config_error(
                    "fields",
                    format!(
                        "field {name} has shape ({}, {}), expected ({n}, {ns}): bars x symbols",
                        m.shape()[0],
                        m.shape()[1]
                    ),
                ));
            }
            Ok(m.clone())
        };
        let mut ohlcv: Vec<Values<f64>> = Vec::with_capacity(FIELDS.len());
        for name in FIELDS {
            let a = fields
                .get_item(name)?
                .ok_or_else(|| PyKeyError::new_err(format!("no field {name:?} in fields")))?;
            let m = matrix(name, &a)?;
            ohlcv.push(frozen(name, &a, m.data() as *const f64, n * ns)?);
        }
        let mut extra = Vec::new();
        for (k, v) in fields.iter() {
            let name: String = k.extract()?;
            if !FIELDS.contains(&name.as_str()) {
                let m: PyReadonlyArray2<f64> = matrix(&name, &v)?.readonly();
                extra.push(Column {
                    values: m.as_array().iter().copied().collect(),
                    name,
                });
            }
        }
        let ohlcv: [Values<f64>; 5] = ohlcv
            .try_into()
            .map_err(|_| config_error("fields", "five price fields".to_string()))?;
        let inner = py
            .detach(|| BarData::from_aligned(symbols, ts, ohlcv, extra))
            .map_err(to_py)?;
        Ok(Self { inner })
    }

    #[getter]
    fn symbols(&self) -> Vec<String> {
        self.inner.symbols().to_vec()
    }
    #[getter]
    fn n_bars(&self) -> usize {
        self.inner.n_bars()
    }
    #[getter]
    fn n_symbols(&self) -> usize {
        self.inner.n_symbols()
    }
    #[getter]
    fn extra_names(&self) -> Vec<String> {
        self.inner.extra_names().map(String::from).collect()
    }
    /// The aligned timestamps (int64 ns, UTC), read-only.
    #[getter]
    fn ts<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyArray1<i64>> {
        readonly::vector(slf.as_any(), slf.get().inner.ts())
    }
    /// A field (`open` ... `volume`, or an extra column) as a read-only (bars, symbols) array.
    fn field<'py>(slf: &Bound<'py, Self>, name: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let d = &slf.get().inner;
        let values = d.field(name).ok_or_else(|| {
            let extra: Vec<&str> = d.extra_names().collect();
            PyKeyError::new_err(format!(
                "no field {name:?}; fields are {FIELDS:?} plus extra columns {extra:?}"
            ))
        })?;
        Ok(readonly::matrix(
            slf.as_any(),
            values,
            d.n_bars(),
            d.n_symbols(),
        ))
    }
    fn __repr__(&self) -> String {
        format!(
            "Data(bars={}, symbols={:?})",
            self.inner.n_bars(),
            self.inner.symbols()
        )
    }
}
