//! Thin PyO3 layer over `bt-engine-core`: takes numpy columns without copying, drives a
//! Python strategy bar by bar, runs the Rust-native drivers and returns columnar results.

mod engine;
mod indicators;
mod views;

use pyo3::prelude::*;

pyo3::create_exception!(
    _engine,
    StrategyError,
    pyo3::exceptions::PyRuntimeError,
    "A strategy callback raised; the message names the bar and __cause__ holds the original."
);

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", bt_engine_core::VERSION)?;
    m.add("StrategyError", m.py().get_type::<StrategyError>())?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<views::Line>()?;
    m.add_class::<views::BarView>()?;
    m.add_class::<views::OrderInfo>()?;
    m.add_class::<views::FillInfo>()?;
    indicators::register(m)?;
    Ok(())
}
