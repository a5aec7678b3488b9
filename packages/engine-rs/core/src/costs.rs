//! Fee and slippage models: pure functions of a fill. Enums, so the hot loop dispatches with
//! a match and a model a run does not use costs nothing.

use crate::types::Side;

/// What a fee model sees of a fill.
#[derive(Clone, Copy, Debug)]
pub struct FillContext {
    pub side: Side,
    pub quantity: f64,
    /// Fill price after slippage.
    pub price: f64,
    /// quantity x price x multiplier, in cash.
    pub notional: f64,
    pub symbol: usize,
    pub bar: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fee {
    /// No commission.
    Free,
    /// max(rate x |notional|, min) + fixed, per fill.
    Rate { rate: f64, min: f64, fixed: f64 },
}

impl Fee {
    #[inline]
    pub fn commission(&self, f: &FillContext) -> f64 {
        self.on_notional(f.notional)
    }

    /// The largest notional whose cost, commission included, fits in `cash`.
    pub fn affordable(&self, cash: f64) -> f64 {
        if cash <= 0.0 {
            return 0.0;
        }
        match *self {
            Fee::Free => cash,
            Fee::Rate { rate, min, fixed } => {
                let c = cash - fixed;
                if c <= 0.0 {
                    return 0.0;
                }
                // Either the rate applies (rate x N >= min) or the minimum does.
                let by_rate = c / (1.0 + rate);
                let n = if rate * by_rate >= min {
                    by_rate
                } else {
                    c - min
                };
                // A hair under, so that rounding never makes it one cent too dear.
                (n * (1.0 - 1e-12)).max(0.0)
            }
        }
    }

    /// The commission of a fill of `notional` cash (what today's models depend on).
    #[inline]
    pub fn on_notional(&self, notional: f64) -> f64 {
        match *self {
            Fee::Free => 0.0,
            Fee::Rate { rate, min, fixed } => (notional.abs() * rate).max(min) + fixed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Slippage {
    None,
    /// Basis points of the reference price, always against the trader.
    Bps(f64),
}

impl Slippage {
    /// The fill price for a trade referenced at `reference`.
    #[inline]
    pub fn price(&self, side: Side, reference: f64) -> f64 {
        match *self {
            Slippage::None => reference,
            Slippage::Bps(bps) => reference + side.sign() * (reference * bps / 10_000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(notional: f64) -> FillContext {
        FillContext {
            side: Side::Buy,
            quantity: 1.0,
            price: notional,
            notional,
            symbol: 0,
            bar: 0,
        }
    }

    #[test]
    fn rate_with_minimum_and_fixed() {
        let fee = Fee::Rate {
            rate: 0.001,
            min: 5.0,
            fixed: 1.0,
        };
        assert_eq!(fee.commission(&ctx(1_000.0)), 6.0); // the minimum applies
        assert_eq!(fee.commission(&ctx(10_000.0)), 11.0);
        assert_eq!(fee.commission(&ctx(-10_000.0)), 11.0);
        assert_eq!(Fee::Free.commission(&ctx(1e6)), 0.0);
    }

    #[test]
    fn affordable_notional_pays_for_its_commission() {
        let fee = Fee::Rate {
            rate: 0.001,
            min: 5.0,
            fixed: 1.0,
        };
        for cash in [3.0, 6.0, 100.0, 5_000.0, 1e6] {
            let n = fee.affordable(cash);
            // Zero: nothing is affordable (no trade, so no commission either).
            assert!(
                n == 0.0 || (n > 0.0 && n + fee.on_notional(n) <= cash + 1e-9),
                "{cash}: {n}"
            );
            if n > 0.0 {
                // And not much less than possible.
                let more = n * 1.001 + 0.01;
                assert!(more + fee.on_notional(more) > cash, "{cash}: {n}");
            }
        }
        assert_eq!(Fee::Free.affordable(10.0), 10.0);
        assert_eq!(fee.affordable(-1.0), 0.0);
    }

    #[test]
    fn slippage_is_against_the_trader() {
        let s = Slippage::Bps(10.0);
        assert_eq!(s.price(Side::Buy, 100.0), 100.1);
        assert_eq!(s.price(Side::Sell, 100.0), 99.9);
        assert_eq!(Slippage::None.price(Side::Sell, 100.0), 100.0);
    }
}
