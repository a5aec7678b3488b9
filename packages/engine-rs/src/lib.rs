//! PyO3 binding of `bt-engine-core`, cut by concern: `data` (the validated data handle),
//! `engine` (one run), `py_driver` (a Python strategy as a driver of the core loop),
//! `views` (what a strategy reads per bar; the only unsafe code), `results` (columns),
//! `convert` (text <-> enums, settings -> Config), `errors` (typed exceptions),
//! `indicators` (numpy wrappers).

mod convert;
mod data;
mod engine;
mod errors;
mod indicators;
mod py_driver;
mod resample;
mod results;
mod sweep;
mod views;

use pyo3::prelude::*;

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", bt_engine_core::VERSION)?;
    errors::register(m)?;
    m.add_class::<data::PyData>()?;
    m.add_class::<convert::PyOrderRequest>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<views::Line>()?;
    m.add_class::<resample::Timeframe>()?;
    m.add_class::<views::BarView>()?;
    m.add_class::<views::OrderInfo>()?;
    m.add_class::<views::FillInfo>()?;
    m.add_function(wrap_pyfunction!(convert::check_config, m)?)?;
    m.add("CONFIG_KEYS", convert::CONFIG_KEYS.to_vec())?;
    indicators::register(m)?;
    m.add_class::<sweep::SweepRun>()?;
    m.add_function(wrap_pyfunction!(sweep::sweep_sma_cross, m)?)?;
    Ok(())
}
