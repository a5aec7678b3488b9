//! `Timeframe`: the coarse bars of a `Data` handle under one rule, built once (in Rust, in one
//! pass per symbol) and read as columns or, through `Engine.timeframe_line`, as lines that a
//! strategy sees only once each coarse bar is complete (see `bt_engine_core::resample`).

use std::sync::Arc;

use bt_engine_core::resample::{self, CoarseSeries, Rule};
use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;

use crate::data::PyData;
use crate::errors::{config_error, to_py};
use crate::views::readonly;

const NANOS_PER_HOUR: f64 = 3_600_000_000_000.0;

#[pyclass(frozen, module = "bt_engine._engine")]
pub struct Timeframe {
    pub data: Py<PyData>,
    rule: String,
    series: Vec<CoarseSeries>,
    /// Per symbol, the reveal map shared by every line of that symbol.
    pub reveal: Vec<Arc<Vec<u32>>>,
}

impl Timeframe {
    pub fn series(&self, symbol: usize) -> PyResult<&CoarseSeries> {
        self.series.get(symbol).ok_or_else(|| {
            PyIndexError::new_err(format!(
                "symbol index {symbol} out of range ({} symbols)",
                self.series.len()
            ))
        })
    }
}

#[pymethods]
impl Timeframe {
    /// Group `data`'s bars by `rule` on the clock shifted by `day_offset_hours`; each fine bar
    /// lasts `bar_length` nanoseconds after its stamp (0: an instant).
    #[new]
    #[pyo3(signature = (data, rule, *, day_offset_hours = 0.0, bar_length = 0))]
    fn new(
        py: Python<'_>,
        data: Py<PyData>,
        rule: &str,
        day_offset_hours: f64,
        bar_length: i64,
    ) -> PyResult<Self> {
        if !day_offset_hours.is_finite() || day_offset_hours.abs() > 24.0 {
            return Err(config_error(
                "day_offset_hours",
                format!("day_offset_hours must be within [-24, 24], got {day_offset_hours}"),
            ));
        }
        let offset = (day_offset_hours * NANOS_PER_HOUR).round() as i64;
        let parsed = Rule::parse(rule).map_err(to_py)?;
        let series = {
            let d = &data.get().inner;
            let bars = d.bars();
            py.detach(|| resample::resample(&bars, parsed, rule, offset, bar_length))
                .map_err(to_py)?
        };
        let reveal = series.iter().map(|s| Arc::new(s.counts.clone())).collect();
        Ok(Self {
            data,
            rule: rule.to_string(),
            series,
            reveal,
        })
    }

    /// The rule as given.
    #[getter]
    fn rule(&self) -> &str {
        &self.rule
    }

    #[getter]
    fn n_symbols(&self) -> usize {
        self.series.len()
    }

    /// How many completed coarse bars symbol `symbol` has.
    fn n_bars(&self, symbol: usize) -> PyResult<usize> {
        Ok(self.series(symbol)?.len())
    }

    /// A coarse price field (`open` ... `volume`) of one symbol, read-only, one value per
    /// completed coarse bar.
    fn field<'py>(
        slf: &Bound<'py, Self>,
        name: &str,
        symbol: usize,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let s = slf.get().series(symbol)?;
        let values = s.field(name).ok_or_else(|| {
            config_error(
                "field",
                format!(
                    "unknown timeframe field {name:?}; expected open, high, low, close or volume"
                ),
            )
        })?;
        Ok(readonly::vector(slf.as_any(), values))
    }

    /// An index column of one symbol's coarse bars: `start` (bucket start, UTC ns; for
    /// `every N bars` the first bar's time), `first`/`last` (fine rows of the first and last
    /// constituent), `visible_from` (the fine row from which the bar is visible) or `counts`
    /// (per fine row, how many coarse bars are visible).
    fn index<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        symbol: usize,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let s = self.series(symbol)?;
        let wide = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
        let out: Vec<i64> = match name {
            "start" => s.start.clone(),
            "first" => wide(&s.first),
            "last" => wide(&s.last),
            "visible_from" => wide(&s.visible_from),
            "counts" => s.counts.iter().map(|&x| i64::from(x)).collect(),
            _ => {
                return Err(config_error(
                    "name",
                    format!(
                        "unknown timeframe index {name:?}; expected start, first, last, \
                         visible_from or counts"
                    ),
                ))
            }
        };
        Ok(out.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "Timeframe(rule={:?}, symbols={})",
            self.rule,
            self.series.len()
        )
    }
}
