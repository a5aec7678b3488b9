//! `Data`: the validated, reusable market-data handle. Built once from per-symbol numpy
//! columns (validated in one pass, aligned, copied into memory the engine owns), then shared
//! by any number of runs, on any thread; its arrays are read-only views nobody can write to.

use bt_engine_core::{BarData, SymbolInput};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

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
