//! Run configuration: cash, costs and fill timing.

use crate::costs::{Fee, Slippage};
use crate::error::{EngineError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillOn {
    /// An order decided on bar t fills on bar t+1 (default, free of look-ahead).
    NextOpen,
    /// Fill on the close of the bar that produced the decision. Optimistic: the strategy
    /// trades at a price it used to decide.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub cash: f64,
    /// Commission as a fraction of traded notional.
    pub commission_rate: f64,
    /// Minimum commission per fill.
    pub commission_min: f64,
    /// Fixed amount added to the commission of every fill.
    pub commission_fixed: f64,
    /// Slippage in basis points of the reference price, always against the trader.
    pub slippage_bps: f64,
    pub fill_on: FillOn,
    /// Offset added to timestamps before taking the calendar day (DAY orders), in ns.
    pub day_offset_ns: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cash: 100_000.0,
            commission_rate: 0.0,
            commission_min: 0.0,
            commission_fixed: 0.0,
            slippage_bps: 0.0,
            fill_on: FillOn::NextOpen,
            day_offset_ns: 0,
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
        Ok(())
    }

    /// The fee model these settings describe.
    pub fn fee(&self) -> Fee {
        if self.commission_rate == 0.0 && self.commission_min == 0.0 && self.commission_fixed == 0.0
        {
            return Fee::Free;
        }
        Fee::Rate {
            rate: self.commission_rate,
            min: self.commission_min,
            fixed: self.commission_fixed,
        }
    }

    /// Commission of one fill of `notional` cash under these settings.
    pub fn commission(&self, notional: f64) -> f64 {
        self.fee().on_notional(notional)
    }

    /// The slippage model these settings describe.
    pub fn slippage(&self) -> Slippage {
        if self.slippage_bps == 0.0 {
            Slippage::None
        } else {
            Slippage::Bps(self.slippage_bps)
        }
    }
}
