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
    /// Cash account (pays for what it buys) or margin account (borrows against equity).
    pub account: AccountKind,
    /// Equity required to hold a position, as a fraction of its value (None: 1 in a cash
    /// account, 0.5 in a margin account); an instrument's own rate overrides it.
    pub initial_margin: Option<f64>,
    /// Equity below this fraction of the positions' value is a margin call (None: 0 in a cash
    /// account, so only negative equity; 0.25 in a margin account).
    pub maintenance_margin: Option<f64>,
    /// Gross exposure after a risk-increasing fill may not exceed this multiple of equity.
    pub max_leverage: Option<f64>,
    /// May sells take positions below zero (every symbol; instruments may override).
    pub allow_short: bool,
    /// Annual rate charged on the value of short positions, accrued per bar by elapsed time.
    pub borrow_rate: f64,
    /// Dated price-limit schedules by symbol name ("*": every symbol), applied in order.
    pub price_limits: Vec<(String, Vec<crate::limits::Band>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccountKind {
    #[default]
    Cash,
    Margin,
}

impl AccountKind {
    /// The default initial and maintenance margin rates of this kind of account.
    pub fn default_margins(self) -> (f64, f64) {
        match self {
            AccountKind::Cash => (1.0, 0.0),
            AccountKind::Margin => (0.5, 0.25),
        }
    }
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
    /// May sells take this symbol's position below zero?
    pub allow_short: Option<bool>,
    /// Annual borrow rate of a short position in this symbol.
    pub borrow_rate: Option<f64>,
    /// Initial and maintenance margin rates of this symbol (fractions of position value).
    pub margin_initial: Option<f64>,
    pub margin_maintenance: Option<f64>,
    /// The smallest order size (a smaller sell only when it closes the position), 0: none.
    pub min_size: Option<f64>,
    /// Units bought become sellable this many trading days later, 0: at once.
    pub t_plus: Option<u32>,
    /// A bar without volume trades nothing.
    pub suspend_on_zero_volume: Option<bool>,
}

impl InstrumentSettings {
    /// Override `inst`'s facts with the settings given (None: keep).
    pub fn apply_to(&self, inst: &mut crate::instrument::Instrument) {
        let set = |x: Option<f64>, field: &mut f64| {
            if let Some(x) = x {
                *field = x;
            }
        };
        set(self.size_increment, &mut inst.size_increment);
        set(self.tick_size, &mut inst.tick_size);
        set(self.multiplier, &mut inst.multiplier);
        set(self.borrow_rate, &mut inst.borrow_rate);
        set(self.margin_initial, &mut inst.initial_margin);
        set(self.margin_maintenance, &mut inst.maintenance_margin);
        set(self.min_size, &mut inst.min_size);
        if let Some(x) = self.allow_short {
            inst.shortable = x;
        }
        if let Some(x) = self.t_plus {
            inst.t_plus = x;
        }
        if let Some(x) = self.suspend_on_zero_volume {
            inst.suspend_on_zero_volume = x;
        }
    }
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
            account: AccountKind::Cash,
            initial_margin: None,
            maintenance_margin: None,
            max_leverage: None,
            allow_short: false,
            borrow_rate: 0.0,
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
        self.check_margins()?;
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

    /// The account's (initial, maintenance) margin rates.
    pub fn margins(&self) -> (f64, f64) {
        let (im, mm) = self.account.default_margins();
        (
            self.initial_margin.unwrap_or(im),
            self.maintenance_margin.unwrap_or(mm),
        )
    }

    fn check_margins(&self) -> Result<()> {
        non_negative("borrow_rate", self.borrow_rate)?;
        let (im, mm) = self.margins();
        let bad = |name: &'static str, what: String| {
            Err(EngineError::config(format!("parameter {name} {what}"))
                .with_field("parameter", name))
        };
        if self.account == AccountKind::Cash && im != 1.0 {
            return bad(
                "initial_margin",
                format!("must be 1 in a cash account (it pays for what it holds), got {im}; use account='margin' to trade on margin"),
            );
        }
        if !(im.is_finite() && im > 0.0 && im <= 1.0) {
            return bad("initial_margin", format!("must be in (0, 1], got {im}"));
        }
        if !(mm.is_finite() && (0.0..=im).contains(&mm)) {
            return bad(
                "maintenance_margin",
                format!("must be in [0, initial_margin = {im}], got {mm}"),
            );
        }
        if let Some(l) = self.max_leverage {
            if !(l.is_finite() && l > 0.0) {
                return bad(
                    "max_leverage",
                    format!("must be a finite number > 0, got {l}"),
                );
            }
        }
        for (name, set) in &self.instruments {
            let field = |f: &'static str, what: String| {
                Err(
                    EngineError::config(format!("instruments[{name:?}].{f} {what}"))
                        .with_field("symbol", name.clone())
                        .with_field("parameter", f),
                )
            };
            if let Some(r) = set.borrow_rate {
                if !(r.is_finite() && r >= 0.0) {
                    return field(
                        "borrow_rate",
                        format!("must be a finite number >= 0, got {r}"),
                    );
                }
            }
            let sim = set.margin_initial.unwrap_or(im);
            if let Some(x) = set.margin_initial {
                if !(x.is_finite() && x > 0.0 && x <= 1.0) {
                    return field("margin_initial", format!("must be in (0, 1], got {x}"));
                }
                if self.account == AccountKind::Cash && x != 1.0 {
                    return field(
                        "margin_initial",
                        format!("must be 1 in a cash account, got {x}; use account='margin'"),
                    );
                }
            }
            if let Some(x) = set.margin_maintenance {
                if !(x.is_finite() && (0.0..=sim).contains(&x)) {
                    return field(
                        "margin_maintenance",
                        format!("must be in [0, its initial margin {sim}], got {x}"),
                    );
                }
            }
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
