//! Fee and slippage models: pure functions of a fill. A run's fees are a schedule of lines
//! (a broker commission, a per-share fee, a stamp duty on sells, ...), each charged per order:
//! a line's minimum is charged once per order however many partial fills it takes, because a
//! fill is charged what the line costs for the order's cumulative fills minus what the order
//! has paid already. Lines may be dated (in force from / until a time), so that a market
//! preset can carry a rate change.

use crate::types::Side;

/// Which account a fee line books into: commissions (broker and exchange fees) or taxes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FeeKind {
    #[default]
    Commission,
    Tax,
}

/// The sides a fee line applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sides {
    #[default]
    Both,
    Buy,
    Sell,
}

impl Sides {
    #[inline]
    fn applies(self, side: Side) -> bool {
        match self {
            Sides::Both => true,
            Sides::Buy => side == Side::Buy,
            Sides::Sell => side == Side::Sell,
        }
    }
}

/// How a line's charge for an order grows with the order's cumulative value and units.
#[derive(Clone, Debug, PartialEq)]
pub enum FeeRule {
    /// `rate` × value, at least `min` per order.
    Rate { rate: f64, min: f64 },
    /// `per_unit` × units, at least `min` per order.
    PerUnit { per_unit: f64, min: f64 },
    /// Progressive rates by order value: `tiers` are (from value, rate) with ascending
    /// values, the first from 0; each slice of the value pays its tier's rate (like tax
    /// brackets, so the charge never falls as the value grows). At least `min` per order.
    Tiered { tiers: Vec<(f64, f64)>, min: f64 },
    /// A fixed amount per order, charged with its first fill.
    Fixed(f64),
}

impl FeeRule {
    /// The line's charge for an order that has traded `value` cash in `units` units.
    fn total(&self, value: f64, units: f64) -> f64 {
        if units <= 0.0 {
            return 0.0;
        }
        let value = value.abs();
        match self {
            FeeRule::Rate { rate, min } => (value * rate).max(*min),
            FeeRule::PerUnit { per_unit, min } => (units * per_unit).max(*min),
            FeeRule::Tiered { tiers, min } => {
                let mut fee = 0.0;
                for (j, &(from, rate)) in tiers.iter().enumerate() {
                    if value <= from {
                        break;
                    }
                    let to = tiers.get(j + 1).map_or(f64::INFINITY, |t| t.0);
                    fee += (value.min(to) - from) * rate;
                }
                fee.max(*min)
            }
            FeeRule::Fixed(x) => *x,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FeeLine {
    /// Shown in error messages and docs ("commission", "stamp_duty", ...).
    pub name: String,
    pub rule: FeeRule,
    pub sides: Sides,
    pub kind: FeeKind,
    /// In force for fills at or after this time (ns since the epoch, UTC).
    pub from_ns: Option<i64>,
    /// In force for fills before this time.
    pub until_ns: Option<i64>,
}

impl FeeLine {
    pub fn new(name: impl Into<String>, rule: FeeRule) -> Self {
        Self {
            name: name.into(),
            rule,
            sides: Sides::Both,
            kind: FeeKind::Commission,
            from_ns: None,
            until_ns: None,
        }
    }
    #[inline]
    fn applies(&self, side: Side, ts: i64) -> bool {
        self.sides.applies(side)
            && self.from_ns.is_none_or(|f| ts >= f)
            && self.until_ns.is_none_or(|u| ts < u)
    }
}

/// What an order has traded before a fill, and the fill itself.
#[derive(Clone, Copy, Debug)]
pub struct FillContext {
    pub side: Side,
    /// Units and value (quantity × price × multiplier) of this fill.
    pub quantity: f64,
    pub notional: f64,
    /// The order's cumulative units and value before this fill.
    pub units_before: f64,
    pub notional_before: f64,
    /// Time of the fill (ns since the epoch, UTC), for dated lines.
    pub ts: i64,
}

/// (commission, tax) of a fill.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Charge {
    pub commission: f64,
    pub tax: f64,
}

impl Charge {
    #[inline]
    pub fn total(&self) -> f64 {
        self.commission + self.tax
    }
}

/// The fee lines of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fees {
    lines: Vec<FeeLine>,
    /// The one line of the most common schedule (a rate with a minimum, both sides, undated),
    /// charged without the general loop.
    only_rate: Option<(f64, f64)>,
}

impl Fees {
    pub fn new(lines: Vec<FeeLine>) -> Self {
        let only_rate = match lines.as_slice() {
            [FeeLine {
                rule: FeeRule::Rate { rate, min },
                sides: Sides::Both,
                kind: FeeKind::Commission,
                from_ns: None,
                until_ns: None,
                ..
            }] => Some((*rate, *min)),
            _ => None,
        };
        Self { lines, only_rate }
    }
    pub fn lines(&self) -> &[FeeLine] {
        &self.lines
    }
    pub fn is_free(&self) -> bool {
        self.lines.is_empty()
    }

    /// The charge of one fill.
    #[inline]
    pub fn charge(&self, f: &FillContext) -> Charge {
        if let Some((rate, min)) = self.only_rate {
            if f.units_before <= 0.0 && f.quantity > 0.0 {
                return Charge {
                    commission: (f.notional.abs() * rate).max(min),
                    tax: 0.0,
                };
            }
        }
        let mut c = Charge::default();
        for line in &self.lines {
            if !line.applies(f.side, f.ts) {
                continue;
            }
            let before = line.rule.total(f.notional_before, f.units_before);
            let after = line
                .rule
                .total(f.notional_before + f.notional, f.units_before + f.quantity);
            let x = (after - before).max(0.0);
            match line.kind {
                FeeKind::Commission => c.commission += x,
                FeeKind::Tax => c.tax += x,
            }
        }
        c
    }

    /// The charge of a fresh order's first fill of `notional` cash at `unit_value` per unit.
    pub fn first_fill(&self, side: Side, notional: f64, unit_value: f64, ts: i64) -> Charge {
        self.charge(&FillContext {
            side,
            quantity: notional / unit_value,
            notional,
            units_before: 0.0,
            notional_before: 0.0,
            ts,
        })
    }

    /// The largest notional a fresh buy can take so that it and its fees fit in `cash`.
    pub fn affordable(&self, cash: f64, unit_value: f64, ts: i64) -> f64 {
        self.affordable_on(cash, unit_value, ts, Side::Buy, 1.0)
    }

    /// The largest notional N of a `side` order whose `margin` x N plus its fees fits in
    /// `budget` (a cash buy: margin 1, budget the cash; on margin: the free equity).
    pub fn affordable_on(
        &self,
        budget: f64,
        unit_value: f64,
        ts: i64,
        side: Side,
        margin: f64,
    ) -> f64 {
        if budget <= 0.0 {
            return 0.0;
        }
        // The common schedules (a rate with a minimum, a fixed amount) have a closed form.
        let mut rate = None;
        let mut fixed = 0.0;
        let mut simple = true;
        for line in self.lines.iter().filter(|l| l.applies(side, ts)) {
            match line.rule {
                FeeRule::Rate { rate: r, min } if rate.is_none() => rate = Some((r, min)),
                FeeRule::Fixed(x) => fixed += x,
                _ => simple = false,
            }
        }
        if simple {
            let c = budget - fixed;
            if c <= 0.0 {
                return 0.0;
            }
            let Some((rate, min)) = rate else {
                return if fixed == 0.0 {
                    budget / margin
                } else {
                    (c / margin * (1.0 - 1e-12)).max(0.0)
                };
            };
            // Either the rate applies (rate x N >= min) or the minimum does.
            let by_rate = c / (margin + rate);
            let n = if rate * by_rate >= min {
                by_rate
            } else {
                (c - min) / margin
            };
            // A hair under, so that rounding never makes it one cent too dear.
            return (n * (1.0 - 1e-12)).max(0.0);
        }
        // Otherwise margin x N + fees(N) grows with N: bisect.
        let cost = |n: f64| margin * n + self.first_fill(side, n, unit_value, ts).total();
        let top = budget / margin;
        if cost(top) <= budget {
            return top;
        }
        let (mut lo, mut hi) = (0.0, top);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if cost(mid) <= budget {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo * (1.0 - 1e-12)).max(0.0)
    }
}

/// What a slippage model may read of the bar a fill happens on.
#[derive(Clone, Copy, Debug)]
pub struct SlipContext {
    pub high: f64,
    pub low: f64,
    pub volume: f64,
    pub quantity: f64,
    /// Volatility of the symbol's close-to-close log returns over the model's window of
    /// bars before this one (NaN when fewer than two returns are known).
    pub sigma: f64,
}

impl SlipContext {
    /// For models that read nothing of the bar.
    pub const NONE: SlipContext = SlipContext {
        high: f64::NAN,
        low: f64::NAN,
        volume: f64::NAN,
        quantity: f64::NAN,
        sigma: f64::NAN,
    };
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Slippage {
    None,
    /// Basis points of the reference price, always against the trader.
    Bps(f64),
    /// A share of the bar's high-low range, against the trader.
    RangeShare(f64),
    /// Square-root market impact: reference × coef × sigma × sqrt(quantity / bar volume),
    /// sigma from the `window` bars before the fill.
    SqrtImpact {
        coef: f64,
        window: usize,
    },
}

impl Slippage {
    /// The number of bars of history the model reads (sigma), 0 when none.
    pub fn window(&self) -> usize {
        match *self {
            Slippage::SqrtImpact { window, .. } => window,
            _ => 0,
        }
    }

    /// The fill price for a trade referenced at `reference`.
    #[inline]
    pub fn price(&self, side: Side, reference: f64, ctx: &SlipContext) -> f64 {
        let away = match *self {
            Slippage::None => return reference,
            Slippage::Bps(bps) => reference * bps / 10_000.0,
            Slippage::RangeShare(share) => share * (ctx.high - ctx.low),
            Slippage::SqrtImpact { coef, .. } => {
                if ctx.sigma.is_nan() || ctx.volume <= 0.0 {
                    0.0
                } else {
                    reference * coef * ctx.sigma * (ctx.quantity / ctx.volume).sqrt()
                }
            }
        };
        reference + side.sign() * away
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(rate: f64, min: f64) -> FeeLine {
        FeeLine::new("commission", FeeRule::Rate { rate, min })
    }

    fn fill(side: Side, notional: f64, before: f64) -> FillContext {
        FillContext {
            side,
            quantity: notional / 10.0,
            notional,
            units_before: before / 10.0,
            notional_before: before,
            ts: 0,
        }
    }

    #[test]
    fn rate_with_minimum_and_fixed() {
        let fees = Fees::new(vec![
            rate(0.001, 5.0),
            FeeLine::new("ticket", FeeRule::Fixed(1.0)),
        ]);
        let c = |n| fees.charge(&fill(Side::Buy, n, 0.0)).commission;
        assert_eq!(c(1_000.0), 6.0); // the minimum applies
        assert_eq!(c(10_000.0), 11.0);
        assert_eq!(
            Fees::default().charge(&fill(Side::Buy, 1e6, 0.0)).total(),
            0.0
        );
    }

    #[test]
    fn minimum_and_fixed_are_charged_once_per_order() {
        let fees = Fees::new(vec![
            rate(0.001, 5.0),
            FeeLine::new("ticket", FeeRule::Fixed(1.0)),
        ]);
        // Three partial fills of 1,000: 0.001 x 3,000 = 3 < 5, so 5 + 1 in all.
        let mut paid = 0.0;
        for k in 0..3 {
            paid += fees
                .charge(&fill(Side::Buy, 1_000.0, 1_000.0 * k as f64))
                .commission;
        }
        assert!((paid - 6.0).abs() < 1e-12, "{paid}");
        // Past the minimum the rate takes over: 10 fills of 1,000 pay 10 + 1.
        let mut paid = 0.0;
        for k in 0..10 {
            paid += fees
                .charge(&fill(Side::Buy, 1_000.0, 1_000.0 * k as f64))
                .commission;
        }
        assert!((paid - 11.0).abs() < 1e-9, "{paid}");
    }

    #[test]
    fn per_unit_tiered_and_sell_only_tax() {
        let mut duty = FeeLine::new(
            "stamp_duty",
            FeeRule::Rate {
                rate: 0.001,
                min: 0.0,
            },
        );
        duty.sides = Sides::Sell;
        duty.kind = FeeKind::Tax;
        let fees = Fees::new(vec![
            FeeLine::new(
                "per_share",
                FeeRule::PerUnit {
                    per_unit: 0.005,
                    min: 1.0,
                },
            ),
            FeeLine::new(
                "tiered",
                FeeRule::Tiered {
                    tiers: vec![(0.0, 0.002), (10_000.0, 0.001)],
                    min: 0.0,
                },
            ),
            duty,
        ]);
        // Buy 2,000 units worth 20,000: per share 10, tiered 20 + 10, no duty.
        let buy = fees.charge(&fill(Side::Buy, 20_000.0, 0.0));
        assert!(
            (buy.commission - 40.0).abs() < 1e-9 && buy.tax == 0.0,
            "{buy:?}"
        );
        let sell = fees.charge(&fill(Side::Sell, 20_000.0, 0.0));
        assert!((sell.tax - 20.0).abs() < 1e-9, "{sell:?}");
        // A tiny per-share order pays the minimum.
        let tiny = fees.charge(&fill(Side::Buy, 10.0, 0.0));
        assert!((tiny.commission - (1.0 + 0.02)).abs() < 1e-12, "{tiny:?}");
    }

    #[test]
    fn dated_lines_switch_at_their_date() {
        let mut old = FeeLine::new(
            "duty",
            FeeRule::Rate {
                rate: 0.001,
                min: 0.0,
            },
        );
        old.until_ns = Some(100);
        let mut new = FeeLine::new(
            "duty",
            FeeRule::Rate {
                rate: 0.0005,
                min: 0.0,
            },
        );
        new.from_ns = Some(100);
        let fees = Fees::new(vec![old, new]);
        let at = |ts| {
            fees.charge(&FillContext {
                ts,
                ..fill(Side::Sell, 10_000.0, 0.0)
            })
            .commission
        };
        assert_eq!(at(99), 10.0);
        assert_eq!(at(100), 5.0);
    }

    #[test]
    fn affordable_notional_pays_for_its_fees() {
        let simple = Fees::new(vec![
            rate(0.001, 5.0),
            FeeLine::new("ticket", FeeRule::Fixed(1.0)),
        ]);
        let general = Fees::new(vec![
            rate(0.001, 5.0),
            FeeLine::new(
                "per_share",
                FeeRule::PerUnit {
                    per_unit: 0.01,
                    min: 0.0,
                },
            ),
        ]);
        for fees in [&simple, &general] {
            for cash in [3.0, 6.0, 100.0, 5_000.0, 1e6] {
                let n = fees.affordable(cash, 10.0, 0);
                let cost = |n: f64| n + fees.first_fill(Side::Buy, n, 10.0, 0).total();
                assert!(
                    n == 0.0 || (n > 0.0 && cost(n) <= cash + 1e-9),
                    "{cash}: {n}"
                );
                if n > 0.0 {
                    let more = n * 1.001 + 0.01;
                    assert!(cost(more) > cash, "{cash}: {n}");
                }
            }
        }
        assert_eq!(Fees::default().affordable(10.0, 1.0, 0), 10.0);
        assert_eq!(simple.affordable(-1.0, 1.0, 0), 0.0);
    }

    fn ctx() -> SlipContext {
        SlipContext {
            high: 101.0,
            low: 99.0,
            volume: 10_000.0,
            quantity: 100.0,
            sigma: 0.02,
        }
    }

    #[test]
    fn slippage_is_against_the_trader() {
        let s = Slippage::Bps(10.0);
        assert_eq!(s.price(Side::Buy, 100.0, &ctx()), 100.1);
        assert_eq!(s.price(Side::Sell, 100.0, &ctx()), 99.9);
        assert_eq!(Slippage::None.price(Side::Sell, 100.0, &ctx()), 100.0);
        assert_eq!(
            Slippage::RangeShare(0.25).price(Side::Buy, 100.0, &ctx()),
            100.5
        );
        // 100 x 0.5 x 0.02 x sqrt(100 / 10,000) = 0.1
        let impact = Slippage::SqrtImpact {
            coef: 0.5,
            window: 20,
        };
        assert!((impact.price(Side::Sell, 100.0, &ctx()) - 99.9).abs() < 1e-12);
        let no_sigma = SlipContext {
            sigma: f64::NAN,
            ..ctx()
        };
        assert_eq!(impact.price(Side::Buy, 100.0, &no_sigma), 100.0);
    }
}
