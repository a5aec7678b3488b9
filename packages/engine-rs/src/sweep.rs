//! `sweep_sma_cross`: many parameter sets of the built-in SMA cross in one call, on Rust
//! threads with the GIL released (the core's `sweep` module), each finished set handed to a
//! Python callback as a `SweepRun` while the other sets keep running.

use bt_engine_core::sweep::{self, CrossRun, CrossSet, SweepOptions, SweepSink};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert;
use crate::data::PyData;
use crate::errors::{config_error, to_py};
use crate::results;
use crate::views::readonly;

/// The outcome of one parameter set of a sweep: the same result columns as an `Engine` that
/// ran it (`equity_curve`, `exposure_curve`, `fills`, `fill_costs`, `order_columns`, `trades`, `ledger`,
/// `margin_calls`, `rejections`, `n_orders`),
/// read-only; the curves are views of the run's records, not copies.
#[pyclass(frozen, module = "bt_engine._engine")]
pub struct SweepRun {
    run: CrossRun,
    data: Py<PyData>,
}

impl SweepRun {
    fn ts(&self) -> &[i64] {
        self.data.get().inner.ts()
    }
}

#[pymethods]
impl SweepRun {
    fn equity_curve<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyArray1<f64>> {
        readonly::vector(slf.as_any(), slf.get().run.equity_curve())
    }
    fn exposure_curve<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        if !slf.get().run.keeps_exposure_curve() {
            return Err(config_error(
                "exposure_curves",
                "this sweep kept no exposure curves (sweep_sma_cross(..., \
                 exposure_curves=False)); exposure_summary() has their figures"
                    .to_string(),
            ));
        }
        Ok(readonly::vector(
            slf.as_any(),
            slf.get().run.exposure_curve(),
        ))
    }
    fn fills<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        results::fills(py, self.run.broker().fills(), self.ts())
    }
    fn exposure_summary(&self) -> PyResult<results::ExposureFigures> {
        results::exposure_figures(self.run.exposure_summary())
    }
    fn fill_costs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        results::fill_costs(py, self.run.broker().fills())
    }
    fn order_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        results::orders(py, self.run.broker().orders())
    }
    fn trades<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        results::trades(py, self.run.broker().trades(), self.ts())
    }
    fn ledger<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        results::ledger(py, self.run.broker())
    }
    /// Rejected orders per reason code: (count, the first one's message), as `Engine`.
    fn margin_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        results::margin_calls(py, self.run.broker().margin_calls(), self.ts())
    }
    fn rejections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        results::rejections(py, self.run.broker().orders())
    }
    #[getter]
    fn n_orders(&self) -> usize {
        self.run.broker().orders().len()
    }
    #[getter]
    fn final_equity(&self) -> f64 {
        self.run.equity_curve().last().copied().unwrap_or(f64::NAN)
    }
    #[getter]
    fn n_trades(&self) -> usize {
        self.run.broker().trades().len()
    }
    fn __repr__(&self) -> String {
        format!(
            "SweepRun(final_equity={}, trades={})",
            self.final_equity(),
            self.n_trades()
        )
    }
}

/// Hands outcomes to the Python callback (taking the GIL only for the call) and checks for
/// Ctrl-C while it waits.
struct PySink {
    data: Py<PyData>,
    callback: Py<PyAny>,
}

impl SweepSink for PySink {
    type Error = PyErr;

    fn done(&mut self, index: usize, outcome: bt_engine_core::Result<CrossRun>) -> PyResult<()> {
        Python::attach(|py| {
            let arg: Py<PyAny> = match outcome {
                Ok(run) => Py::new(
                    py,
                    SweepRun {
                        run,
                        data: self.data.clone_ref(py),
                    },
                )?
                .into_any(),
                Err(e) => to_py(e).into_value(py).into_any(),
            };
            self.callback.call1(py, (index, arg)).map(|_| ())
        })
    }

    fn idle(&mut self) -> PyResult<()> {
        Python::attach(|py| py.check_signals())
    }
}

fn lengths_match(fast: &[usize], slow: &[usize], size: &[f64], sizing: usize) -> PyResult<()> {
    if fast.len() != slow.len() || fast.len() != size.len() || fast.len() != sizing {
        return Err(config_error(
            "fast",
            format!(
                "fast, slow, size and sizing must have one value per set, got {}, {}, {} and {}",
                fast.len(),
                slow.len(),
                size.len(),
                sizing
            ),
        ));
    }
    Ok(())
}

/// Run the SMA cross for every set `(fast[i], slow[i], size[i])` over `data` with the run
/// configuration `config` on `threads` threads (default: all cores), the GIL released.
/// `sizing[i]` says what `size[i]` is, as in `Engine.run_sma_cross`: "units" (the default
/// for every set), "value" or "pct".
/// `on_result(i, outcome)` is called on this thread as each set finishes (in finishing
/// order), with a `SweepRun`, or with the `ConfigError` the set would raise in
/// `Engine.run_sma_cross`; an exception it raises (or Ctrl-C) stops the sweep and
/// propagates. Each distinct window's averages are computed once (within
/// `memory_budget` bytes, see the core's `sweep` module). With `exposure_curves=False` the
/// runs keep only their exposure curves' figures (`SweepRun.exposure_summary()`), 8 bytes
/// less per bar per run in flight. Returns the number of averages computed.
#[pyfunction]
#[pyo3(signature = (data, config, fast, slow, size, on_result, *, threads = None, memory_budget = None, sizing = None, exposure_curves = true))]
#[allow(clippy::too_many_arguments)]
pub fn sweep_sma_cross(
    py: Python<'_>,
    data: Py<PyData>,
    config: Option<&Bound<'_, PyDict>>,
    fast: Vec<usize>,
    slow: Vec<usize>,
    size: Vec<f64>,
    on_result: Py<PyAny>,
    threads: Option<usize>,
    memory_budget: Option<usize>,
    sizing: Option<Vec<String>>,
    exposure_curves: bool,
) -> PyResult<usize> {
    let sizing = match sizing {
        Some(texts) => texts
            .iter()
            .map(|t| convert::sizing(t))
            .collect::<PyResult<Vec<_>>>()?,
        None => vec![Default::default(); fast.len()],
    };
    lengths_match(&fast, &slow, &size, sizing.len())?;
    if threads == Some(0) {
        return Err(config_error("threads", "threads must be >= 1".into()));
    }
    let cfg = convert::config(config)?;
    let sets: Vec<CrossSet> = fast
        .iter()
        .zip(&slow)
        .zip(&size)
        .zip(&sizing)
        .map(|(((&fast, &slow), &size), &sizing)| CrossSet {
            fast,
            slow,
            size,
            sizing,
        })
        .collect();
    let defaults = SweepOptions::default();
    let opts = SweepOptions {
        threads: threads.unwrap_or(defaults.threads),
        memory_budget: memory_budget.unwrap_or(defaults.memory_budget),
        exposure_curves,
    };
    let mut sink = PySink {
        data: data.clone_ref(py),
        callback: on_result,
    };
    let holder = data.clone_ref(py);
    let report = py.detach(|| {
        let d = &holder.get().inner;
        sweep::sweep_sma_cross(&d.bars(), cfg, d.symbols(), &sets, opts, &mut sink)
    })?;
    Ok(report.windows_computed)
}
