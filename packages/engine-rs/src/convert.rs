//! Text <-> engine enums and Python settings -> `Config`, each in exactly one place.

use bt_engine_core::{Config, FillOn, OrderKind, OrderRequest, Side, Sizing, TimeInForce};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::config_error;

pub fn side(text: &str) -> PyResult<Side> {
    match text.to_ascii_lowercase().as_str() {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(config_error(
            "side",
            format!("side must be 'buy' or 'sell', got {text:?}"),
        )),
    }
}

pub fn tif(text: &str) -> PyResult<TimeInForce> {
    match text.to_ascii_lowercase().as_str() {
        "gtc" => Ok(TimeInForce::Gtc),
        "day" => Ok(TimeInForce::Day),
        _ => Err(config_error(
            "tif",
            format!("tif must be 'gtc' or 'day', got {text:?}"),
        )),
    }
}

pub fn sizing(text: &str) -> PyResult<Sizing> {
    match text {
        "units" => Ok(Sizing::Units),
        "value" => Ok(Sizing::Value),
        "pct" => Ok(Sizing::EquityPct),
        _ => Err(config_error(
            "sizing",
            format!("sizing must be 'units', 'value' or 'pct', got {text:?}"),
        )),
    }
}

pub fn fill_on(text: &str) -> PyResult<FillOn> {
    match text {
        "next_open" => Ok(FillOn::NextOpen),
        "close" => Ok(FillOn::Close),
        _ => Err(config_error(
            "fill_on",
            format!("parameter fill_on must be 'next_open' or 'close', got {text:?}"),
        )),
    }
}

pub fn fill_on_name(f: FillOn) -> &'static str {
    match f {
        FillOn::NextOpen => "next_open",
        FillOn::Close => "close",
    }
}

/// The settings a run's configuration may carry into the engine.
pub const CONFIG_KEYS: [&str; 7] = [
    "cash",
    "commission",
    "commission_min",
    "commission_fixed",
    "slippage_bps",
    "fill_on",
    "day_offset_hours",
];

/// A run configuration (a dict: the keys of `CONFIG_KEYS`, all optional) -> `Config`,
/// validated once.
pub fn config(d: Option<&Bound<'_, PyDict>>) -> PyResult<Config> {
    let mut cfg = Config::default();
    let Some(d) = d else {
        cfg.validate().map_err(crate::errors::to_py)?;
        return Ok(cfg);
    };
    for (k, v) in d.iter() {
        let key: String = k.extract()?;
        let num = |name: &'static str| -> PyResult<f64> {
            v.extract::<f64>().map_err(|_| {
                config_error(name, format!("parameter {name} must be a number, got {v}"))
            })
        };
        match key.as_str() {
            "cash" => cfg.cash = num("cash")?,
            "commission" => cfg.commission_rate = num("commission")?,
            "commission_min" => cfg.commission_min = num("commission_min")?,
            "commission_fixed" => cfg.commission_fixed = num("commission_fixed")?,
            "slippage_bps" => cfg.slippage_bps = num("slippage_bps")?,
            "fill_on" => cfg.fill_on = fill_on(&v.extract::<String>()?)?,
            "day_offset_hours" => {
                let h = num("day_offset_hours")?;
                if !h.is_finite() || h.abs() > 24.0 {
                    return Err(config_error(
                        "day_offset_hours",
                        format!("parameter day_offset_hours must be within [-24, 24], got {h}"),
                    ));
                }
                cfg.day_offset_ns = (h * 3_600_000_000_000.0) as i64;
            }
            other => {
                return Err(config_error(
                    "config",
                    format!(
                        "unknown run setting {other:?}; known: {}",
                        CONFIG_KEYS.join(", ")
                    ),
                ))
            }
        }
    }
    cfg.validate().map_err(crate::errors::to_py)?;
    Ok(cfg)
}

/// An order request as it crosses from Python: parsed once when built.
#[pyclass(frozen, module = "bt_engine._engine", name = "OrderRequest")]
pub struct PyOrderRequest {
    pub inner: OrderRequest,
}

#[pymethods]
impl PyOrderRequest {
    /// `size` is units, a cash value or a fraction of equity, per `sizing` ("units",
    /// "value", "pct"); value and percent sizes become units at the fill price.
    #[new]
    #[pyo3(signature = (symbol, side, size, limit = None, tif = "gtc", sizing = "units"))]
    fn new(
        symbol: usize,
        side: &str,
        size: f64,
        limit: Option<f64>,
        tif: &str,
        sizing: &str,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: OrderRequest {
                symbol,
                side: self::side(side)?,
                size,
                kind: limit.map_or(OrderKind::Market, OrderKind::Limit),
                tif: self::tif(tif)?,
                sizing: self::sizing(sizing)?,
            },
        })
    }
    #[getter]
    fn symbol(&self) -> usize {
        self.inner.symbol
    }
    #[getter]
    fn side(&self) -> &'static str {
        self.inner.side.as_str()
    }
    #[getter]
    fn size(&self) -> f64 {
        self.inner.size
    }
    #[getter]
    fn limit(&self) -> Option<f64> {
        self.inner.kind.limit_price()
    }
    #[getter]
    fn tif(&self) -> &'static str {
        self.inner.tif.as_str()
    }
    #[getter]
    fn sizing(&self) -> &'static str {
        self.inner.sizing.as_str()
    }
    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "OrderRequest(symbol={}, side={:?}, size={}, limit={:?}, tif={:?}, sizing={:?})",
            r.symbol,
            r.side.as_str(),
            r.size,
            r.kind.limit_price(),
            r.tif.as_str(),
            r.sizing.as_str()
        )
    }
}

/// Validate a run configuration (a dict of `CONFIG_KEYS` settings) by the engine's rules.
#[pyfunction]
pub fn check_config(config: &Bound<'_, PyDict>) -> PyResult<()> {
    self::config(Some(config)).map(|_| ())
}
