//! Engine errors as typed Python exceptions. One conversion for every path: the kind picks
//! the class, the message says what and where, and each structured field of the core error
//! (bar, time, symbol, column, row, parameter, check ...) becomes an attribute, with
//! `fields` holding them all, so programs branch on data, never on English text.

use bt_engine_core::{EngineError as CoreError, ErrorKind};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(
    _engine,
    EngineError,
    PyValueError,
    "Base of the engine's errors. Attributes: kind, fields (dict), and each field by name."
);
pyo3::create_exception!(
    _engine,
    DataError,
    EngineError,
    "The market data is malformed; fields name the symbol, row, column and check."
);
pyo3::create_exception!(
    _engine,
    ConfigError,
    EngineError,
    "A run setting or argument is out of range; `parameter` names it."
);
pyo3::create_exception!(
    _engine,
    OrderError,
    EngineError,
    "An order request is invalid (size, price, symbol, id)."
);
pyo3::create_exception!(
    _engine,
    StrategyError,
    PyRuntimeError,
    "A strategy callback raised; `bar`, `time` and `phase` say where, __cause__ holds the original."
);

/// Fields whose values are whole numbers, exposed as int.
const INT_FIELDS: [&str; 3] = ["bar", "row", "symbol_index"];

pub fn attach_fields(py: Python<'_>, err: &PyErr, kind: &str, fields: &[(&str, String)]) {
    let value = err.value(py);
    let dict = PyDict::new(py);
    let _ = value.setattr("kind", kind);
    for (k, v) in fields {
        let obj = match v.parse::<i64>() {
            Ok(i) if INT_FIELDS.contains(k) => i.into_pyobject(py).map(|o| o.into_any()).ok(),
            _ => v.into_pyobject(py).map(|o| o.into_any()).ok(),
        };
        if let Some(obj) = obj {
            let _ = dict.set_item(*k, &obj);
            let _ = value.setattr(*k, obj);
        }
    }
    let _ = value.setattr("fields", dict);
}

/// The Python exception for a core error.
pub fn to_py(e: CoreError) -> PyErr {
    let err = match e.kind {
        ErrorKind::Data => DataError::new_err(e.message),
        ErrorKind::Config => ConfigError::new_err(e.message),
        ErrorKind::Order => OrderError::new_err(e.message),
        ErrorKind::Driver => EngineError::new_err(e.message),
    };
    Python::attach(|py| attach_fields(py, &err, e.kind.as_str(), &e.fields));
    err
}

/// A configuration error naming `parameter`.
pub fn config_error(parameter: &'static str, message: String) -> PyErr {
    to_py(CoreError::config(message).with_field("parameter", parameter))
}

/// A strategy error for an exception raised in `phase` at bar `bar` (time `time`).
pub fn strategy_error(py: Python<'_>, phase: &str, bar: usize, time: String, e: PyErr) -> PyErr {
    let what = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an exception".to_string());
    let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    let err = StrategyError::new_err(format!(
        "strategy {phase}() raised {what} at bar {bar} ({time}): {msg}"
    ));
    attach_fields(
        py,
        &err,
        "strategy",
        &[
            ("phase", phase.to_string()),
            ("bar", bar.to_string()),
            ("time", time),
        ],
    );
    err.set_cause(py, Some(e));
    err
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("OrderError", py.get_type::<OrderError>())?;
    m.add("StrategyError", py.get_type::<StrategyError>())?;
    Ok(())
}
