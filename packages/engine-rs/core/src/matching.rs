//! Pure matching rules: where along a bar's price path an order triggers and trades, and at
//! which reference price (before slippage). No state; the broker owns the orders.
//!
//! A phase of a bar is a price path: the open phase runs open -> one extreme -> the other ->
//! close (which extreme first is the run's `bar_path` rule), the close phase
//! (`fill_on="close"`) is the close alone. A position along the path is `k + f`: segment `k`
//! (between points k and k+1), fraction `f` of the way; 0 is the first price.
//!
//! Gaps: an order whose condition the first price it meets already satisfies trades there — a
//! stop gapped through fills at the open (worse than its stop), a limit gapped through at the
//! open (better than its limit). Otherwise a limit trades at its limit and a stop at its stop
//! where the path reaches them. With `LimitFill::Through` a limit needs the price to trade
//! beyond it (touching is not enough), as LEAN's fill model does.

use crate::types::{OrderKind, Side};

/// Which extreme a bar visits first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BarPath {
    /// Against the position held: a long sees the low first, a short the high first, so a
    /// bar that reaches both a position's stop and its target takes the stop. Flat: as
    /// `Adaptive`.
    #[default]
    Pessimistic,
    /// Open -> high -> low -> close.
    Ohlc,
    /// Open -> low -> high -> close when the open is nearer the low, else via the high first.
    Adaptive,
}

/// When does a limit trade?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LimitFill {
    /// When the price reaches the limit.
    #[default]
    Touch,
    /// When the price trades beyond the limit.
    Through,
}

/// The prices a phase offers, in the order they trade (1 to 4 points).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Path {
    pts: [f64; 4],
    n: usize,
}

impl Path {
    /// A single price (the close phase, a tick).
    #[inline]
    pub fn at(price: f64) -> Self {
        Self {
            pts: [price; 4],
            n: 1,
        }
    }

    /// A bar from its open; `low_first` picks the extreme visited first.
    #[inline]
    pub fn bar(open: f64, high: f64, low: f64, close: f64, low_first: bool) -> Self {
        let (a, b) = if low_first { (low, high) } else { (high, low) };
        Self {
            pts: [open, a, b, close],
            n: 4,
        }
    }

    /// The path of a bar under `rule`; `held` is the position's sign (+1 long, -1 short, 0).
    pub fn for_bar(rule: BarPath, open: f64, high: f64, low: f64, close: f64, held: f64) -> Self {
        let adaptive = (open - low) < (high - open);
        let low_first = match rule {
            BarPath::Ohlc => false,
            BarPath::Adaptive => adaptive,
            BarPath::Pessimistic if held > 0.0 => true,
            BarPath::Pessimistic if held < 0.0 => false,
            BarPath::Pessimistic => adaptive,
        };
        Self::bar(open, high, low, close, low_first)
    }

    #[inline]
    pub fn first(&self) -> f64 {
        self.pts[0]
    }

    /// The price at position `pos`.
    pub fn price_at(&self, pos: f64) -> f64 {
        let k = pos.floor() as usize;
        if k + 1 >= self.n {
            return self.pts[self.n - 1];
        }
        let f = pos - k as f64;
        if f == 0.0 {
            self.pts[k]
        } else {
            self.pts[k] + (self.pts[k + 1] - self.pts[k]) * f
        }
    }

    /// First position at or after `from` where the price is at or above `level` (`up`), or at
    /// or below it (`!up`); `strict` needs it beyond. The price there is `level` itself unless
    /// the condition already holds at `from`.
    pub fn first_reach(&self, from: f64, level: f64, up: bool, strict: bool) -> Option<f64> {
        let ok = |p: f64| match (up, strict) {
            (true, false) => p >= level,
            (true, true) => p > level,
            (false, false) => p <= level,
            (false, true) => p < level,
        };
        if ok(self.price_at(from)) {
            return Some(from);
        }
        let mut k = from.floor() as usize;
        let mut a = self.price_at(from);
        while k + 1 < self.n {
            let b = self.pts[k + 1];
            if ok(b) {
                // Strictly beyond a level is reached at the level itself, in the limit.
                return Some(crossing(k, from, a, b, level));
            }
            a = b;
            k += 1;
        }
        None
    }
}

/// Where segment `k` of a path, walked from `from` (price `a` there) to its end (price `b`),
/// crosses `level`.
#[inline]
fn crossing(k: usize, from: f64, a: f64, b: f64, level: f64) -> f64 {
    let start = from.max(k as f64) - k as f64;
    let f = if b == a {
        1.0
    } else {
        ((level - a) / (b - a)).clamp(0.0, 1.0)
    };
    k as f64 + (start + (1.0 - start) * f).clamp(start, 1.0)
}

/// What the path does to an order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Where a not-yet-triggered order's stop was reached (None: not reached, or no stop).
    pub triggered_at: Option<f64>,
    /// Where it trades, and the reference price there.
    pub fill: Option<(f64, f64)>,
    /// A trailing stop's best price after this path (unchanged for other kinds).
    pub trail_ref: f64,
    /// A trailing stop's stop price after this path (or at its trigger).
    pub stop: f64,
}

/// The stop price of a trailing stop whose best price is `best`.
#[inline]
pub fn trailing_stop(side: Side, offset: f64, pct: bool, best: f64) -> f64 {
    let d = if pct { best * offset } else { offset };
    match side {
        Side::Sell => best - d,
        Side::Buy => best + d,
    }
}

/// Evaluate an order along `path` from position `from`. `triggered`: the order's stop was
/// reached earlier; `trail_ref`: a trailing stop's best price so far (NaN: none yet).
pub fn evaluate(
    kind: OrderKind,
    side: Side,
    triggered: bool,
    trail_ref: f64,
    path: &Path,
    from: f64,
    limit_fill: LimitFill,
) -> Outcome {
    let buy = side == Side::Buy;
    let strict = limit_fill == LimitFill::Through;
    let mut out = Outcome {
        triggered_at: None,
        fill: None,
        trail_ref,
        stop: kind.stop_price().unwrap_or(f64::NAN),
    };
    let marketable = |px: f64, p: f64| match (buy, strict) {
        (true, false) => px <= p,
        (true, true) => px < p,
        (false, false) => px >= p,
        (false, true) => px > p,
    };
    let limit = |from: f64, p: f64| -> Option<(f64, f64)> {
        // A buy limit trades at or below p (a sell at or above): already there -> that price.
        let pos = path.first_reach(from, p, !buy, strict)?;
        Some((pos, if pos == from { path.price_at(pos) } else { p }))
    };
    let stop_reach = |from: f64, s: f64| -> Option<(f64, f64)> {
        let pos = path.first_reach(from, s, buy, false)?;
        let px = path.price_at(pos);
        Some((pos, if pos == from { px } else { s }))
    };
    match kind {
        OrderKind::Market => out.fill = Some((from, path.price_at(from))),
        OrderKind::Limit(p) => out.fill = limit(from, p),
        OrderKind::Stop(s) | OrderKind::StopLimit { stop: s, .. } if !triggered => {
            if let Some((pos, px)) = stop_reach(from, s) {
                out.triggered_at = Some(pos);
                out.fill = match kind {
                    // Marketable as it triggers: at the trigger price (exactly the stop, or
                    // the gap's open), else wait for the limit further along.
                    OrderKind::StopLimit { limit: l, .. } if !marketable(px, l) => limit(pos, l),
                    _ => Some((pos, px)),
                };
            }
        }
        OrderKind::Stop(_) => out.fill = Some((from, path.price_at(from))),
        OrderKind::StopLimit { limit: l, .. } => out.fill = limit(from, l),
        OrderKind::Trailing { .. } if triggered => {
            out.fill = Some((from, path.price_at(from)));
        }
        OrderKind::Trailing { offset, pct } => {
            evaluate_trailing(side, offset, pct, path, from, &mut out);
        }
    }
    out
}

/// Walk the path keeping the best price; the stop trails it and triggers when the price comes
/// back to it.
fn evaluate_trailing(
    side: Side,
    offset: f64,
    pct: bool,
    path: &Path,
    from: f64,
    out: &mut Outcome,
) {
    let better = |a: f64, b: f64| match side {
        Side::Sell => a.max(b),
        Side::Buy => a.min(b),
    };
    let hit = |p: f64, stop: f64| match side {
        Side::Sell => p <= stop,
        Side::Buy => p >= stop,
    };
    let p0 = path.price_at(from);
    let mut best = if out.trail_ref.is_nan() {
        p0
    } else {
        out.trail_ref
    };
    // The first price may already be through the stop set by earlier prices: a gap.
    let stop = trailing_stop(side, offset, pct, best);
    if !out.trail_ref.is_nan() && hit(p0, stop) {
        out.triggered_at = Some(from);
        out.fill = Some((from, p0));
        out.stop = stop;
        return;
    }
    best = better(best, p0);
    let mut k = from.floor() as usize;
    let mut a = p0;
    while k + 1 < path.n {
        let b = path.pts[k + 1];
        // Moving towards better prices drags the stop along; moving away may reach it.
        let stop = trailing_stop(side, offset, pct, best);
        if hit(b, stop) {
            let pos = crossing(k, from, a, b, stop);
            out.triggered_at = Some(pos);
            out.fill = Some((pos, stop));
            out.stop = stop;
            out.trail_ref = best;
            return;
        }
        best = better(best, b);
        a = b;
        k += 1;
    }
    out.trail_ref = best;
    out.stop = trailing_stop(side, offset, pct, best);
}

/// A limit order never trades worse than its limit, whatever the slippage model says.
#[inline]
pub fn cap_to_limit(limit: Option<f64>, side: Side, price: f64) -> f64 {
    match (limit, side) {
        (Some(p), Side::Buy) => price.min(p),
        (Some(p), Side::Sell) => price.max(p),
        (None, _) => price,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderKind::{Limit, Market, Stop, StopLimit, Trailing};
    use Side::{Buy, Sell};

    fn fill(kind: OrderKind, side: Side, path: &Path) -> Option<f64> {
        evaluate(kind, side, false, f64::NAN, path, 0.0, LimitFill::Touch)
            .fill
            .map(|f| f.1)
    }

    #[test]
    fn table_open_phase() {
        // O=10 H=11 L=9 C=10.5, high first.
        let q = Path::bar(10.0, 11.0, 9.0, 10.5, false);
        let cases = [
            (Market, Buy, Some(10.0)),
            (Market, Sell, Some(10.0)),
            (Limit(10.5), Buy, Some(10.0)), // open already below the limit: the open
            (Limit(9.5), Buy, Some(9.5)),   // range reaches it: the limit
            (Limit(9.0), Buy, Some(9.0)),   // touching the low is enough
            (Limit(8.9), Buy, None),
            (Limit(9.5), Sell, Some(10.0)), // open above a sell limit: the open
            (Limit(10.5), Sell, Some(10.5)),
            (Limit(11.0), Sell, Some(11.0)),
            (Limit(11.1), Sell, None),
            (Stop(10.5), Buy, Some(10.5)), // reached on the way up: the stop
            (Stop(9.5), Buy, Some(10.0)),  // open already above a buy stop: the open (gap)
            (Stop(11.5), Buy, None),
            (Stop(9.5), Sell, Some(9.5)),
            (Stop(10.5), Sell, Some(10.0)), // gapped through: the open
            (Stop(8.0), Sell, None),
        ];
        for (kind, side, want) in cases {
            assert_eq!(fill(kind, side, &q), want, "{kind:?} {side:?}");
        }
    }

    #[test]
    fn table_close_phase() {
        let q = Path::at(10.0);
        let cases = [
            (Market, Buy, Some(10.0)),
            (Limit(10.0), Buy, Some(10.0)),
            (Limit(10.5), Buy, Some(10.0)),
            (Limit(9.9), Buy, None),
            (Limit(10.0), Sell, Some(10.0)),
            (Limit(9.5), Sell, Some(10.0)),
            (Limit(10.1), Sell, None),
            (Stop(9.0), Buy, Some(10.0)),
            (Stop(10.5), Buy, None),
        ];
        for (kind, side, want) in cases {
            assert_eq!(fill(kind, side, &q), want, "{kind:?} {side:?}");
        }
    }

    #[test]
    fn through_needs_a_trade_beyond_the_limit() {
        let q = Path::bar(10.0, 11.0, 9.0, 10.5, false);
        let ev = |p, side| {
            evaluate(Limit(p), side, false, f64::NAN, &q, 0.0, LimitFill::Through)
                .fill
                .map(|f| f.1)
        };
        assert_eq!(ev(9.0, Buy), None, "the low only touches 9");
        assert_eq!(ev(9.1, Buy), Some(9.1));
        assert_eq!(ev(11.0, Sell), None);
        assert_eq!(
            ev(10.0, Buy),
            Some(10.0),
            "at the open, then through on the way to 9"
        );
        assert_eq!(ev(10.2, Buy), Some(10.0), "an open beyond: the open");
        let flat_low = Path::bar(10.0, 11.0, 10.0, 10.5, false);
        let o = evaluate(
            Limit(10.0),
            Buy,
            false,
            f64::NAN,
            &flat_low,
            0.0,
            LimitFill::Through,
        );
        assert_eq!(o.fill, None, "the price only ever touches 10");
    }

    #[test]
    fn paths_by_rule() {
        let (o, h, l, c) = (10.0, 12.0, 9.5, 11.0);
        let low_first = |rule, held| Path::for_bar(rule, o, h, l, c, held).pts[1] == l;
        assert!(!low_first(BarPath::Ohlc, 1.0));
        assert!(low_first(BarPath::Adaptive, 0.0), "open nearer the low");
        assert!(
            low_first(BarPath::Pessimistic, 1.0),
            "a long sees the low first"
        );
        assert!(
            !low_first(BarPath::Pessimistic, -1.0),
            "a short the high first"
        );
        assert!(low_first(BarPath::Pessimistic, 0.0), "flat: adaptive");
    }

    #[test]
    fn positions_are_ordered_along_the_path() {
        let q = Path::bar(10.0, 11.0, 9.0, 10.5, true); // low first
        let at = |kind, side| {
            evaluate(kind, side, false, f64::NAN, &q, 0.0, LimitFill::Touch)
                .fill
                .unwrap()
                .0
        };
        let stop = at(Stop(9.5), Sell);
        let target = at(Limit(10.8), Sell);
        assert!(stop < 1.0 && target > 1.0, "{stop} {target}");
        assert!((q.price_at(stop) - 9.5).abs() < 1e-12);
        // From a later position the earlier crossing no longer counts.
        let later = evaluate(Stop(9.5), Sell, false, f64::NAN, &q, 1.0, LimitFill::Touch);
        assert_eq!(
            later.fill.map(|f| f.1),
            Some(9.0),
            "already below at pos 1: that price"
        );
    }

    #[test]
    fn stop_limit_triggers_then_waits_for_its_limit() {
        // Buy stop 10.5 limit 10.2: triggered on the way up, the limit is reached later on the
        // way down.
        let q = Path::bar(10.0, 11.0, 9.0, 10.5, false);
        let o = evaluate(
            StopLimit {
                stop: 10.5,
                limit: 10.2,
            },
            Buy,
            false,
            f64::NAN,
            &q,
            0.0,
            LimitFill::Touch,
        );
        let (tpos, (fpos, px)) = (o.triggered_at.unwrap(), o.fill.unwrap());
        assert!(tpos < fpos);
        assert_eq!(px, 10.2);
        // A limit above the trigger price: it trades at the stop as it triggers.
        let o = evaluate(
            StopLimit {
                stop: 10.5,
                limit: 10.8,
            },
            Buy,
            false,
            f64::NAN,
            &q,
            0.0,
            LimitFill::Touch,
        );
        assert_eq!(o.fill.unwrap().1, 10.5);
        // Triggered but never back to the limit.
        let q2 = Path::bar(10.0, 11.0, 10.4, 10.9, false);
        let o = evaluate(
            StopLimit {
                stop: 10.5,
                limit: 10.2,
            },
            Buy,
            false,
            f64::NAN,
            &q2,
            0.0,
            LimitFill::Touch,
        );
        assert!(o.triggered_at.is_some() && o.fill.is_none());
    }

    #[test]
    fn trailing_stop_follows_the_best_price() {
        // Sell trailing by 1.0 from a best of 10: up to 12 (stop 11), then down to 9.5.
        let q = Path::bar(10.0, 12.0, 9.5, 10.0, false);
        let kind = Trailing {
            offset: 1.0,
            pct: false,
        };
        let o = evaluate(kind, Sell, false, 10.0, &q, 0.0, LimitFill::Touch);
        assert_eq!(o.fill.unwrap().1, 11.0);
        assert_eq!(o.trail_ref, 12.0);
        // Not reached: the best price and the stop move up.
        let q = Path::bar(10.0, 12.0, 11.5, 11.8, false);
        let o = evaluate(kind, Sell, false, 10.0, &q, 0.0, LimitFill::Touch);
        assert!(o.fill.is_none());
        assert_eq!((o.trail_ref, o.stop), (12.0, 11.0));
        // A gap below the stop set by earlier prices: the open.
        let q = Path::bar(8.0, 8.5, 7.5, 8.2, false);
        let o = evaluate(kind, Sell, false, 12.0, &q, 0.0, LimitFill::Touch);
        assert_eq!(o.fill.unwrap(), (0.0, 8.0));
        // Percent: a buy trailing 10 % above the lowest price.
        let kind = Trailing {
            offset: 0.1,
            pct: true,
        };
        let q = Path::bar(10.0, 10.5, 8.0, 9.0, true);
        let o = evaluate(kind, Buy, false, 10.0, &q, 0.0, LimitFill::Touch);
        assert!((o.fill.unwrap().1 - 8.8).abs() < 1e-12);
    }

    #[test]
    fn limit_caps_slipped_price() {
        assert_eq!(cap_to_limit(Some(10.0), Buy, 10.2), 10.0);
        assert_eq!(cap_to_limit(Some(10.0), Sell, 9.8), 10.0);
        assert_eq!(cap_to_limit(None, Buy, 10.2), 10.2);
    }
}
