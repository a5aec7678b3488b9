//! numpy wrappers of the core indicators.

use bt_engine_core::indicators as ind;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;

use crate::errors::{config_error, to_py};

/// The `window` argument of indicator `name`: any Python integer (numpy ones too). PyO3's own
/// conversion to usize raises an OverflowError that does not say which argument was wrong, so
/// negative and oversized windows are reported here, by name, as ValueErrors like window 0.
fn window_arg(name: &str, window: &Bound<'_, PyAny>) -> PyResult<usize> {
    match window.extract::<usize>() {
        Ok(n) => Ok(n),
        Err(e) if e.is_instance_of::<PyOverflowError>(window.py()) => Err(config_error(
            "window",
            if window.lt(0)? {
                format!("{name}: window must be >= 1, got {window}")
            } else {
                format!(
                    "{name}: window must be at most {}, got {window}",
                    usize::MAX
                )
            },
        )),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{name}: window must be an integer, got {}",
            window.get_type().name()?
        ))),
    }
}

fn vec_of(x: &PyReadonlyArray1<'_, f64>) -> Vec<f64> {
    // Strided or non-contiguous inputs are read element by element; contiguous ones borrowed.
    match x.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => x.as_array().iter().copied().collect(),
    }
}

/// Run a one-series indicator without the GIL and hand the result to numpy.
fn unary<'py>(
    py: Python<'py>,
    x: &PyReadonlyArray1<'py, f64>,
    f: impl FnOnce(&[f64]) -> bt_engine_core::Result<Vec<f64>> + Send,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let v = vec_of(x);
    Ok(py.detach(|| f(&v)).map_err(to_py)?.into_pyarray(py))
}

/// Simple moving average over the last `window` values (NaN = no bar; warm-up is NaN).
#[pyfunction]
fn sma<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_arg("sma", window)?;
    unary(py, &x, |v| ind::sma(v, window))
}

/// Exponential moving average, alpha = 2/(window+1), seeded with the SMA of the first window.
#[pyfunction]
fn ema<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_arg("ema", window)?;
    unary(py, &x, |v| ind::ema(v, window))
}

/// Wilder's RSI.
#[pyfunction]
fn rsi<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_arg("rsi", window)?;
    unary(py, &x, |v| ind::rsi(v, window))
}

/// Average true range with Wilder smoothing.
#[pyfunction]
fn atr<'py>(
    py: Python<'py>,
    high: PyReadonlyArray1<'py, f64>,
    low: PyReadonlyArray1<'py, f64>,
    close: PyReadonlyArray1<'py, f64>,
    window: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_arg("atr", window)?;
    let (h, l, c) = (vec_of(&high), vec_of(&low), vec_of(&close));
    Ok(py
        .detach(|| ind::atr(&h, &l, &c, window))
        .map_err(to_py)?
        .into_pyarray(py))
}

/// Bollinger bands (middle, upper, lower) with population standard deviation.
#[pyfunction]
#[pyo3(signature = (x, window, k = 2.0))]
#[allow(clippy::type_complexity)]
fn bollinger<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: &Bound<'py, PyAny>,
    k: f64,
) -> PyResult<(
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
)> {
    let window = window_arg("bollinger", window)?;
    let v = vec_of(&x);
    let (m, u, l) = py.detach(|| ind::bollinger(&v, window, k)).map_err(to_py)?;
    Ok((m.into_pyarray(py), u.into_pyarray(py), l.into_pyarray(py)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sma, m)?)?;
    m.add_function(wrap_pyfunction!(ema, m)?)?;
    m.add_function(wrap_pyfunction!(rsi, m)?)?;
    m.add_function(wrap_pyfunction!(atr, m)?)?;
    m.add_function(wrap_pyfunction!(bollinger, m)?)?;
    Ok(())
}
