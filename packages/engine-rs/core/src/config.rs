//! Run configuration: cash, costs, fill timing and the intrabar rules.

use crate::costs::{FeeLine, FeeRule, Fees, Slippage};
use crate::error::{EngineError, Result};
use crate::matching::{BarPath, LimitFill};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillOn {
    /// An order decided on bar t fills on bar t+1 (default, free of look-ahead).
    NextOpen,
    /// Fill on the close of the bar that produced the decision. Optimistic: the strategy
    /// trades at a price it used to decide.
    Close,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub cash: f64,
    /// Commission as a fraction of traded notional.
    pub commission_rate: f64,
    /// Minimum commission per order (charged once across its partial fills).
    pub commission_min: f64,
    /// Fixed amount added to the commission of every order (with its first fill).
    pub commission_fixed: f64,
    /// More fee lines (per-share fees, taxes, tiers, dated rates), after the commission.
    pub fees: Vec<FeeLine>,
    /// Slippage in basis points of the reference price, always against the trader.
    pub slippage_bps: f64,
    /// Another slippage model (range share, square-root impact); excludes `slippage_bps`.
    pub slippage_model: Slippage,
    pub fill_on: FillOn,
    /// Offset added to timestamps before taking the calendar day (DAY orders), in ns.
    pub day_offset_ns: i64,
    /// Which extreme of a bar its path visits first.
    pub bar_path: BarPath,
    pub limit_fill: LimitFill,
    /// At most this fraction of a bar's volume is traded per symbol and bar (None: no cap).
    pub volume_limit: Option<f64>,
    /// Per-symbol instrument settings by symbol name ("*": every symbol), applied in order.
    pub instruments: Vec<(String, InstrumentSettings)>,
    /// Dated price-limit schedules by symbol name ("*": every symbol), applied in order.
    pub price_limits: Vec<(String, Vec<crate::limits::Band>)>,
}

/// Settings that override an instrument's defaults (None: keep).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InstrumentSettings {
    /// Order sizes must be whole multiples of this (a lot), 0: any size.
    pub size_increment: Option<f64>,
    /// Limit and stop prices must lie on this grid, 0: any price.
    pub tick_size: Option<f64>,
    /// Cash value of one unit per point of price.
    pub multiplier: Option<f64>,
    /// The smallest order size (a smaller sell only when it closes the position), 0: none.
    pub min_size: Option<f64>,
    /// Units bought become sellable this many trading days later, 0: at once.
    pub t_plus: Option<u32>,
    /// A bar without volume trades nothing.
    pub suspend_on_zero_volume: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cash: 100_000.0,
            commission_rate: 0.0,
            commission_min: 0.0,
            commission_fixed: 0.0,
            fees: Vec::new(),
            slippage_bps: 0.0,
            slippage_model: Slippage::None,
            fill_on: FillOn::NextOpen,
            day_offset_ns: 0,
            bar_path: BarPath::Pessimistic,
            limit_fill: LimitFill::Touch,
            volume_limit: None,
            instruments: Vec::new(),
            price_limits: Vec::new(),
        }
    }
}

fn non_negative(name: &'static str, v: f64) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(EngineError::config(format!(
            "parameter {name} must be a finite number >= 0, got {v}"
        ))
        .with_field("parameter", name));
    }
    Ok(())
}

impl Config {
    pub fn validate(&self) -> Result<()> {
        if !self.cash.is_finite() || self.cash <= 0.0 {
            return Err(EngineError::config(format!(
                "parameter cash must be a finite number > 0, got {}",
                self.cash
            ))
            .with_field("parameter", "cash"));
        }
        non_negative("commission", self.commission_rate)?;
        non_negative("commission_min", self.commission_min)?;
        non_negative("commission_fixed", self.commission_fixed)?;
        non_negative("slippage_bps", self.slippage_bps)?;
        if self.commission_rate >= 1.0 {
            return Err(EngineError::config(format!(
                "parameter commission is a fraction of notional and must be < 1, got {}",
                self.commission_rate
            ))
            .with_field("parameter", "commission"));
        }
        if self.slippage_bps >= 10_000.0 {
            return Err(EngineError::config(format!(
                "parameter slippage_bps must be < 10000, got {}",
                self.slippage_bps
            ))
            .with_field("parameter", "slippage_bps"));
        }
        for line in &self.fees {
            check_fee_line(line)?;
        }
        if self.slippage_model != Slippage::None && self.slippage_bps != 0.0 {
            return Err(EngineError::config(
                "set either slippage_bps or a slippage model, not both".to_string(),
            )
            .with_field("parameter", "slippage"));
        }
        match self.slippage_model {
            Slippage::None => {}
            Slippage::Bps(x) => non_negative("slippage.bps", x)?,
            Slippage::RangeShare(x) => {
                non_negative("slippage.share", x)?;
                if x > 1.0 {
                    return Err(EngineError::config(format!(
                        "parameter slippage.share is a fraction of the bar's range and must be <= 1, got {x}"
                    ))
                    .with_field("parameter", "slippage.share"));
                }
            }
            Slippage::SqrtImpact { coef, window } => {
                non_negative("slippage.coef", coef)?;
                if window < 2 {
                    return Err(EngineError::config(format!(
                        "parameter slippage.window must be >= 2 bars, got {window}"
                    ))
                    .with_field("parameter", "slippage.window"));
                }
            }
        }
        if let Some(v) = self.volume_limit {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(EngineError::config(format!(
                    "parameter volume_limit is a fraction of a bar's volume in (0, 1], got {v}"
                ))
                .with_field("parameter", "volume_limit"));
            }
        }
        for (name, bands) in &self.price_limits {
            crate::limits::check_schedule(name, bands)?;
        }
        Ok(())
    }

    /// The fee lines these settings describe: the commission, then the other lines.
    pub fn fee_schedule(&self) -> Fees {
        let mut lines = Vec::with_capacity(self.fees.len() + 2);
        if self.commission_rate != 0.0 || self.commission_min != 0.0 {
            lines.push(FeeLine::new(
                "commission",
                FeeRule::Rate {
                    rate: self.commission_rate,
                    min: self.commission_min,
                },
            ));
        }
        if self.commission_fixed != 0.0 {
            lines.push(FeeLine::new(
                "commission_fixed",
                FeeRule::Fixed(self.commission_fixed),
            ));
        }
        lines.extend(self.fees.iter().cloned());
        Fees::new(lines)
    }

    /// The slippage model these settings describe.
    pub fn slippage(&self) -> Slippage {
        if self.slippage_bps != 0.0 {
            Slippage::Bps(self.slippage_bps)
        } else {
            self.slippage_model
        }
    }
}

fn check_fee_line(line: &FeeLine) -> Result<()> {
    let name = &line.name;
    let bad = |what: String| {
        Err(EngineError::config(format!("fee line {name:?}: {what}"))
            .with_field("fee", name.clone()))
    };
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    match &line.rule {
        FeeRule::Rate { rate, min } => {
            if !ok(*rate) || *rate >= 1.0 || !ok(*min) {
                return bad(format!(
                    "rate must be in [0, 1) and min >= 0, got rate {rate}, min {min}"
                ));
            }
        }
        FeeRule::PerUnit { per_unit, min } => {
            if !ok(*per_unit) || !ok(*min) {
                return bad(format!(
                    "per_unit and min must be finite and >= 0, got {per_unit}, {min}"
                ));
            }
        }
        FeeRule::Tiered { tiers, min } => {
            if tiers.is_empty() || tiers[0].0 != 0.0 {
                return bad("tiers must start at value 0".to_string());
            }
            if !ok(*min) {
                return bad(format!("min must be finite and >= 0, got {min}"));
            }
            for (j, &(from, rate)) in tiers.iter().enumerate() {
                if !ok(from) || !ok(rate) || rate >= 1.0 {
                    return bad(format!(
                        "tier {j}: value and rate must be finite, >= 0 and rate < 1, got ({from}, {rate})"
                    ));
                }
                if j > 0 && from <= tiers[j - 1].0 {
                    return bad(format!(
                        "tier {j}: values must ascend, {from} follows {}",
                        tiers[j - 1].0
                    ));
                }
            }
        }
        FeeRule::Fixed(x) => {
            if !ok(*x) {
                return bad(format!("amount must be finite and >= 0, got {x}"));
            }
        }
    }
    if let (Some(f), Some(u)) = (line.from_ns, line.until_ns) {
        if f >= u {
            return bad("from must be before until".to_string());
        }
    }
    Ok(())
}
