//! Text <-> engine enums and Python settings -> `Config`, each in exactly one place.

use bt_engine_core::costs::{FeeKind, FeeLine, FeeRule, Sides, Slippage};
use bt_engine_core::limits::Band;
use bt_engine_core::matching::{BarPath, LimitFill};
use bt_engine_core::types::{Bracket, Level};
use bt_engine_core::{
    AccountKind, Config, FillOn, InstrumentSettings, OrderKind, OrderRequest, Side, Sizing,
    TimeInForce,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

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

/// Time in force from its name and an optional expiry (ns since the epoch, UTC): an expiry
/// alone means "gtd".
pub fn tif(text: &str, expire: Option<i64>) -> PyResult<TimeInForce> {
    let t = match (text.to_ascii_lowercase().as_str(), expire) {
        ("gtc", None) => TimeInForce::Gtc,
        ("gtc" | "gtd", Some(ns)) => TimeInForce::Gtd(ns),
        ("gtd", None) => {
            return Err(config_error(
                "expire",
                "tif 'gtd' needs expire= (the time the order is good until)".to_string(),
            ))
        }
        ("day", None) => TimeInForce::Day,
        ("ioc", None) => TimeInForce::Ioc,
        ("fok", None) => TimeInForce::Fok,
        ("day" | "ioc" | "fok", Some(_)) => {
            return Err(config_error(
                "expire",
                format!("expire= goes with tif 'gtd', not {text:?}"),
            ))
        }
        _ => {
            return Err(config_error(
                "tif",
                format!("tif must be 'gtc', 'day', 'gtd', 'ioc' or 'fok', got {text:?}"),
            ))
        }
    };
    Ok(t)
}

/// The order kind from the price arguments of an order.
pub fn kind(
    limit: Option<f64>,
    stop: Option<f64>,
    trail: Option<f64>,
    trail_pct: Option<f64>,
) -> PyResult<OrderKind> {
    let trailing = match (trail, trail_pct) {
        (Some(_), Some(_)) => {
            return Err(config_error(
                "trail",
                "give trail= (a price distance) or trail_pct= (a fraction), not both".to_string(),
            ))
        }
        (Some(x), None) => Some(OrderKind::Trailing {
            offset: x,
            pct: false,
        }),
        (None, Some(x)) => Some(OrderKind::Trailing {
            offset: x,
            pct: true,
        }),
        (None, None) => None,
    };
    Ok(match (limit, stop, trailing) {
        (None, None, None) => OrderKind::Market,
        (Some(l), None, None) => OrderKind::Limit(l),
        (None, Some(s), None) => OrderKind::Stop(s),
        (Some(l), Some(s), None) => OrderKind::StopLimit { stop: s, limit: l },
        (None, None, Some(k)) => k,
        _ => {
            return Err(config_error(
                "trail",
                "a trailing stop takes no limit= or stop= price".to_string(),
            ))
        }
    })
}

fn level(price: Option<f64>, pct: Option<f64>, name: &'static str) -> PyResult<Option<Level>> {
    match (price, pct) {
        (Some(_), Some(_)) => Err(config_error(
            name,
            format!("give {name}= (a price) or {name}_pct= (a fraction), not both"),
        )),
        (Some(p), None) => Ok(Some(Level::Price(p))),
        (None, Some(f)) => Ok(Some(Level::Pct(f))),
        (None, None) => Ok(None),
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

pub fn bar_path(text: &str) -> PyResult<BarPath> {
    match text {
        "pessimistic" => Ok(BarPath::Pessimistic),
        "ohlc" => Ok(BarPath::Ohlc),
        "adaptive" => Ok(BarPath::Adaptive),
        _ => Err(config_error(
            "bar_path",
            format!("parameter bar_path must be 'pessimistic', 'ohlc' or 'adaptive', got {text:?}"),
        )),
    }
}

pub fn bar_path_name(b: BarPath) -> &'static str {
    match b {
        BarPath::Pessimistic => "pessimistic",
        BarPath::Ohlc => "ohlc",
        BarPath::Adaptive => "adaptive",
    }
}

pub fn limit_fill(text: &str) -> PyResult<LimitFill> {
    match text {
        "touch" => Ok(LimitFill::Touch),
        "through" => Ok(LimitFill::Through),
        _ => Err(config_error(
            "limit_fill",
            format!("parameter limit_fill must be 'touch' or 'through', got {text:?}"),
        )),
    }
}

pub fn limit_fill_name(l: LimitFill) -> &'static str {
    match l {
        LimitFill::Touch => "touch",
        LimitFill::Through => "through",
    }
}

/// The settings a run's configuration may carry into the engine.
pub const CONFIG_KEYS: [&str; 20] = [
    "cash",
    "commission",
    "commission_min",
    "commission_fixed",
    "fees",
    "slippage_bps",
    "slippage",
    "fill_on",
    "day_offset_hours",
    "bar_path",
    "limit_fill",
    "volume_limit",
    "instruments",
    "account",
    "initial_margin",
    "maintenance_margin",
    "max_leverage",
    "allow_short",
    "borrow_rate",
    "price_limits",
];

/// `{symbol or "*": {size_increment, tick_size, multiplier}}` -> instrument settings.
fn instruments(v: &Bound<'_, PyAny>) -> PyResult<Vec<(String, InstrumentSettings)>> {
    let d = v.cast::<PyDict>().map_err(|_| {
        config_error(
            "instruments",
            "parameter instruments must be a dict of {symbol: {size_increment, tick_size, multiplier}}"
                .to_string(),
        )
    })?;
    let mut out = Vec::with_capacity(d.len());
    for (k, spec) in d.iter() {
        let name: String = k.extract()?;
        let spec = spec.cast::<PyDict>().map_err(|_| {
            config_error(
                "instruments",
                format!("instruments[{name:?}] must be a dict"),
            )
        })?;
        let mut set = InstrumentSettings::default();
        for (field, x) in spec.iter() {
            let field: String = field.extract()?;
            if x.is_none() {
                continue;
            }
            if field == "allow_short" {
                let what = format!("instruments[{name:?}].allow_short");
                set.allow_short = Some(flag("instruments", &what, &x)?);
                continue;
            }
            let x: f64 = x.extract().map_err(|_| {
                config_error(
                    "instruments",
                    format!("instruments[{name:?}].{field} must be a number, got {x}"),
                )
            })?;
            let ok = x.is_finite()
                && if field == "multiplier" {
                    x > 0.0
                } else {
                    x >= 0.0
                };
            if !ok {
                return Err(config_error(
                    "instruments",
                    format!(
                        "instruments[{name:?}].{field} must be a finite number {}, got {x}",
                        if field == "multiplier" { "> 0" } else { ">= 0" }
                    ),
                ));
            }
            match field.as_str() {
                "size_increment" => set.size_increment = Some(x),
                "tick_size" => set.tick_size = Some(x),
                "multiplier" => set.multiplier = Some(x),
                "borrow_rate" => set.borrow_rate = Some(x),
                "margin_initial" => set.margin_initial = Some(x),
                "margin_maintenance" => set.margin_maintenance = Some(x),
                "min_size" => set.min_size = Some(x),
                "t_plus" if x.fract() == 0.0 && x <= 1000.0 => set.t_plus = Some(x as u32),
                "t_plus" => {
                    return Err(config_error(
                        "instruments",
                        format!("instruments[{name:?}].t_plus must be a whole number of trading days, got {x}"),
                    ))
                }
                "suspend_on_zero_volume" => set.suspend_on_zero_volume = Some(x != 0.0),
                other => {
                    return Err(config_error(
                        "instruments",
                        format!(
                            "instruments[{name:?}]: unknown setting {other:?}; known: size_increment, tick_size, multiplier, allow_short, borrow_rate, margin_initial, margin_maintenance, min_size, t_plus, suspend_on_zero_volume"
                        ),
                    ))
                }
            }
        }
        out.push((name, set));
    }
    Ok(out)
}

/// `{symbol or "*": [{from, up, down} or {from, pct}, ...]}` -> dated price-limit schedules
/// (`from`: ns since the epoch or None for always; no figures: no limit from then on).
fn price_limits(v: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Vec<Band>)>> {
    let err = |what: String| config_error("price_limits", what);
    let d = v.cast::<PyDict>().map_err(|_| {
        err(
            "parameter price_limits must be a dict of {symbol: [{from, up, down}, ...]}"
                .to_string(),
        )
    })?;
    let mut out = Vec::with_capacity(d.len());
    for (k, rows) in d.iter() {
        let name: String = k.extract()?;
        let rows = rows
            .cast::<PyList>()
            .map_err(|_| err(format!("price_limits[{name:?}] must be a list of bands")))?;
        let mut bands = Vec::with_capacity(rows.len());
        for (j, row) in rows.iter().enumerate() {
            let at = format!("price_limits[{name:?}][{j}]");
            let row = row
                .cast::<PyDict>()
                .map_err(|_| err(format!("{at} must be a dict")))?;
            let mut band = Band::none(i64::MIN);
            let mut pct = None;
            for (key, x) in row.iter() {
                let key: String = key.extract()?;
                if x.is_none() {
                    continue;
                }
                let number = || {
                    x.extract::<f64>()
                        .map_err(|_| err(format!("{at}.{key} must be a number, got {x}")))
                };
                match key.as_str() {
                    "from" => {
                        band.from_ns = x.extract::<i64>().map_err(|_| {
                            err(format!(
                                "{at}.from must be a time in ns since the epoch, got {x}"
                            ))
                        })?
                    }
                    "up" => band.up = number()?,
                    "down" => band.down = number()?,
                    "pct" => pct = Some(number()?),
                    other => {
                        return Err(err(format!(
                            "{at}: unknown key {other:?}; known: from, up, down, pct"
                        )))
                    }
                }
            }
            if let Some(p) = pct {
                if !band.up.is_nan() || !band.down.is_nan() {
                    return Err(err(format!("{at}: give pct or up/down, not both")));
                }
                (band.up, band.down) = (p, p);
            }
            bands.push(band);
        }
        out.push((name, bands));
    }
    Ok(out)
}

/// Keys of one fee line (a dict in the `fees` list).
const FEE_KEYS: [&str; 11] = [
    "name", "type", "rate", "min", "per_unit", "tiers", "amount", "side", "kind", "from", "until",
];

fn fee_line(i: usize, d: &Bound<'_, PyDict>) -> PyResult<FeeLine> {
    let field = format!("fees[{i}]");
    let err = |what: String| config_error("fees", format!("{field}: {what}"));
    for k in d.keys() {
        let k: String = k.extract()?;
        if !FEE_KEYS.contains(&k.as_str()) {
            return Err(err(format!(
                "unknown key {k:?}; known: {}",
                FEE_KEYS.join(", ")
            )));
        }
    }
    let num = |key: &str, default: Option<f64>| -> PyResult<f64> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => v
                .extract::<f64>()
                .map_err(|_| err(format!("{key} must be a number, got {v}"))),
            _ => default.ok_or_else(|| err(format!("{key} is required"))),
        }
    };
    let text = |key: &str, default: &str| -> PyResult<String> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => v
                .extract::<String>()
                .map_err(|_| err(format!("{key} must be text, got {v}"))),
            _ => Ok(default.to_string()),
        }
    };
    let time = |key: &str| -> PyResult<Option<i64>> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => v.extract::<i64>().map(Some).map_err(|_| {
                err(format!(
                    "{key} must be a time in ns since the epoch, got {v}"
                ))
            }),
            _ => Ok(None),
        }
    };
    let kind = text("type", "rate")?;
    let rule = match kind.as_str() {
        "rate" => FeeRule::Rate {
            rate: num("rate", None)?,
            min: num("min", Some(0.0))?,
        },
        "per_unit" => FeeRule::PerUnit {
            per_unit: num("per_unit", None)?,
            min: num("min", Some(0.0))?,
        },
        "tiered" => {
            let tiers: Vec<(f64, f64)> = d
                .get_item("tiers")?
                .ok_or_else(|| err("tiers is required: [[from_value, rate], ...]".to_string()))?
                .extract()
                .map_err(|_| err("tiers must be a list of [from_value, rate] pairs".to_string()))?;
            FeeRule::Tiered {
                tiers,
                min: num("min", Some(0.0))?,
            }
        }
        "fixed" => FeeRule::Fixed(num("amount", None)?),
        other => {
            return Err(err(format!(
                "type must be 'rate', 'per_unit', 'tiered' or 'fixed', got {other:?}"
            )))
        }
    };
    let sides = match text("side", "both")?.as_str() {
        "both" => Sides::Both,
        "buy" => Sides::Buy,
        "sell" => Sides::Sell,
        other => {
            return Err(err(format!(
                "side must be 'both', 'buy' or 'sell', got {other:?}"
            )))
        }
    };
    let fee_kind = match text("kind", "commission")?.as_str() {
        "commission" => FeeKind::Commission,
        "tax" => FeeKind::Tax,
        other => {
            return Err(err(format!(
                "kind must be 'commission' or 'tax', got {other:?}"
            )))
        }
    };
    Ok(FeeLine {
        name: text("name", &kind)?,
        rule,
        sides,
        kind: fee_kind,
        from_ns: time("from")?,
        until_ns: time("until")?,
    })
}

fn slippage_model(d: &Bound<'_, PyDict>) -> PyResult<Slippage> {
    let err = |what: String| config_error("slippage", format!("slippage: {what}"));
    let num = |key: &str| -> PyResult<f64> {
        d.get_item(key)?
            .ok_or_else(|| err(format!("{key} is required")))?
            .extract::<f64>()
            .map_err(|_| err(format!("{key} must be a number")))
    };
    let model: String = d
        .get_item("model")?
        .ok_or_else(|| err("model is required: 'bps', 'range' or 'sqrt_impact'".to_string()))?
        .extract()?;
    let allowed: &[&str] = match model.as_str() {
        "bps" => &["model", "bps"],
        "range" => &["model", "share"],
        "sqrt_impact" => &["model", "coef", "window"],
        other => {
            return Err(err(format!(
                "model must be 'bps', 'range' or 'sqrt_impact', got {other:?}"
            )))
        }
    };
    for k in d.keys() {
        let k: String = k.extract()?;
        if !allowed.contains(&k.as_str()) {
            return Err(err(format!(
                "unknown key {k:?} for model {model:?}; known: {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(match model.as_str() {
        "bps" => Slippage::Bps(num("bps")?),
        "range" => Slippage::RangeShare(num("share")?),
        _ => {
            let window = match d.get_item("window")? {
                Some(v) => v
                    .extract::<usize>()
                    .map_err(|_| err("window must be a whole number of bars".to_string()))?,
                None => 20,
            };
            Slippage::SqrtImpact {
                coef: num("coef")?,
                window,
            }
        }
    })
}

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
            "fees" => {
                let list = v.cast::<PyList>().map_err(|_| {
                    config_error("fees", "parameter fees must be a list of dicts".to_string())
                })?;
                cfg.fees = list
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let d = item.cast::<PyDict>().map_err(|_| {
                            config_error("fees", format!("fees[{i}] must be a dict"))
                        })?;
                        fee_line(i, d)
                    })
                    .collect::<PyResult<_>>()?;
            }
            "slippage" if v.is_none() => cfg.slippage_model = Slippage::None,
            "slippage" => {
                let d = v.cast::<PyDict>().map_err(|_| {
                    config_error("slippage", "parameter slippage must be a dict".to_string())
                })?;
                cfg.slippage_model = slippage_model(d)?;
            }
            "bar_path" => cfg.bar_path = bar_path(&v.extract::<String>()?)?,
            "limit_fill" => cfg.limit_fill = limit_fill(&v.extract::<String>()?)?,
            "instruments" if v.is_none() => cfg.instruments = Vec::new(),
            "instruments" => cfg.instruments = instruments(&v)?,
            "price_limits" if v.is_none() => cfg.price_limits = Vec::new(),
            "price_limits" => cfg.price_limits = price_limits(&v)?,
            "volume_limit" if v.is_none() => cfg.volume_limit = None,
            "volume_limit" => cfg.volume_limit = Some(num("volume_limit")?),
            "fill_on" => cfg.fill_on = fill_on(&v.extract::<String>()?)?,
            "account" => {
                cfg.account = match v.extract::<String>().ok().as_deref() {
                    Some("cash") => AccountKind::Cash,
                    Some("margin") => AccountKind::Margin,
                    _ => {
                        return Err(config_error(
                            "account",
                            format!("parameter account must be 'cash' or 'margin', got {v}"),
                        ))
                    }
                }
            }
            "initial_margin" if v.is_none() => cfg.initial_margin = None,
            "initial_margin" => cfg.initial_margin = Some(num("initial_margin")?),
            "maintenance_margin" if v.is_none() => cfg.maintenance_margin = None,
            "maintenance_margin" => cfg.maintenance_margin = Some(num("maintenance_margin")?),
            "max_leverage" if v.is_none() => cfg.max_leverage = None,
            "max_leverage" => cfg.max_leverage = Some(num("max_leverage")?),
            "allow_short" => cfg.allow_short = flag("allow_short", "parameter allow_short", &v)?,
            "borrow_rate" => cfg.borrow_rate = num("borrow_rate")?,
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

/// A true/false setting (a Python bool, not a number).
fn flag(field: &'static str, what: &str, v: &Bound<'_, PyAny>) -> PyResult<bool> {
    v.cast::<pyo3::types::PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| config_error(field, format!("{what} must be True or False, got {v}")))
}

/// An order request as it crosses from Python: parsed once when built.
#[pyclass(frozen, module = "bt_engine._engine", name = "OrderRequest")]
pub struct PyOrderRequest {
    pub inner: OrderRequest,
}

#[pymethods]
impl PyOrderRequest {
    /// `size` is units, a cash value or a fraction of equity, per `sizing` ("units",
    /// "value", "pct"); value and percent sizes become units at the fill price. `limit`,
    /// `stop` (both: stop-limit), `trail`/`trail_pct` (trailing stop) choose the kind; `tif`
    /// "gtc", "day", "gtd" (with `expire`, ns since the epoch), "ioc", "fok"; `sl`/`tp` (or
    /// `sl_pct`/`tp_pct`) attach bracket exits; `parent` makes it a one-triggers-other child.
    #[new]
    #[pyo3(signature = (symbol, side, size, limit = None, tif = "gtc", sizing = "units", *, stop = None, trail = None, trail_pct = None, expire = None, sl = None, tp = None, sl_pct = None, tp_pct = None, parent = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        symbol: usize,
        side: &str,
        size: f64,
        limit: Option<f64>,
        tif: &str,
        sizing: &str,
        stop: Option<f64>,
        trail: Option<f64>,
        trail_pct: Option<f64>,
        expire: Option<i64>,
        sl: Option<f64>,
        tp: Option<f64>,
        sl_pct: Option<f64>,
        tp_pct: Option<f64>,
        parent: Option<u64>,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: OrderRequest {
                symbol,
                side: self::side(side)?,
                size,
                kind: kind(limit, stop, trail, trail_pct)?,
                tif: self::tif(tif, expire)?,
                sizing: self::sizing(sizing)?,
                bracket: Bracket {
                    sl: level(sl, sl_pct, "sl")?,
                    tp: level(tp, tp_pct, "tp")?,
                },
                parent,
            },
        })
    }
    #[getter]
    fn stop(&self) -> Option<f64> {
        self.inner.kind.stop_price()
    }
    #[getter]
    fn order_type(&self) -> &'static str {
        self.inner.kind.as_str()
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
            "OrderRequest(symbol={}, side={:?}, size={}, type={:?}, limit={:?}, stop={:?}, tif={:?}, sizing={:?})",
            r.symbol,
            r.side.as_str(),
            r.size,
            r.kind.as_str(),
            r.kind.limit_price(),
            r.kind.stop_price(),
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
