//! Per-symbol facts the rules and the ledger need. The defaults describe a plain cash
//! instrument: any positive size, any price, multiplier 1, no shorting.

/// Market or board an instrument trades on; market presets key their rules on it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Market {
    #[default]
    Generic,
    /// A named market or board (e.g. "sh_main", "star"), for presets to interpret.
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Instrument {
    /// Name used in messages (rejection reasons, errors).
    pub name: String,
    /// Order sizes must be a whole multiple of this (0: any size).
    pub size_increment: f64,
    /// Limit prices must be a whole multiple of this (0: any price).
    pub tick_size: f64,
    /// Cash value of one unit per point of price (futures-style contracts); 1 for shares.
    pub multiplier: f64,
    /// May a sell take the position below zero?
    pub shortable: bool,
    pub market: Market,
    /// Annual rate charged on the value of a short position.
    pub borrow_rate: f64,
    /// Equity required to open or add to a position, as a fraction of its value.
    pub initial_margin: f64,
    /// Equity below this fraction of the position's value calls for liquidation.
    pub maintenance_margin: f64,
    /// The smallest order size (0: none); a smaller sell only when it closes the position.
    pub min_size: f64,
    /// Units bought become sellable this many trading days later (0: at once).
    pub t_plus: u32,
    /// A bar without volume trades nothing.
    pub suspend_on_zero_volume: bool,
}

impl Instrument {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            size_increment: 0.0,
            tick_size: 0.0,
            multiplier: 1.0,
            shortable: false,
            market: Market::Generic,
            borrow_rate: 0.0,
            initial_margin: 1.0,
            maintenance_margin: 0.0,
            min_size: 0.0,
            t_plus: 0,
            suspend_on_zero_volume: false,
        }
    }
}

/// True when `x` is a whole multiple of `step` up to rounding of decimal steps (0.01 ...).
pub fn is_multiple(x: f64, step: f64) -> bool {
    if step <= 0.0 {
        return true;
    }
    let k = (x / step).round();
    (x - k * step).abs() <= 1e-9 * step.max(x.abs() * f64::EPSILON * 8.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiples_of_decimal_steps() {
        assert!(is_multiple(300.0, 100.0));
        assert!(!is_multiple(250.0, 100.0));
        assert!(is_multiple(10.23, 0.01));
        assert!(!is_multiple(10.234, 0.01));
        assert!(is_multiple(7.3, 0.0));
    }
}
