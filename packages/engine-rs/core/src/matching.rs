//! Pure matching rules: does an order trade against what a phase of a bar offers, and at
//! which reference price (before slippage). No state; the broker owns the orders.
//!
//! A phase offers a first price and a range: the open phase of a bar offers its open first,
//! then its whole high-low range; the close phase (`fill_on="close"`) offers only the close.
//! So one limit rule serves both: a limit that the first price already satisfies fills there
//! (a gap through the limit fills at the better open), one that the range reaches fills at
//! the limit, otherwise the order keeps working.

use crate::types::{OrderKind, Side};

/// The prices a phase of a bar offers, in the order they trade.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quote {
    pub first: f64,
    pub low: f64,
    pub high: f64,
}

impl Quote {
    /// A bar from its open: the open, then anything in [low, high].
    #[inline]
    pub fn bar(open: f64, high: f64, low: f64) -> Self {
        Self {
            first: open,
            low,
            high,
        }
    }
    /// A single price (the close phase).
    #[inline]
    pub fn at(price: f64) -> Self {
        Self {
            first: price,
            low: price,
            high: price,
        }
    }
}

/// The reference price at which `kind`/`side` trades against `q`, or None if it does not.
#[inline]
pub fn reference_price(kind: OrderKind, side: Side, q: Quote) -> Option<f64> {
    match (kind, side) {
        (OrderKind::Market, _) => Some(q.first),
        (OrderKind::Limit(p), Side::Buy) => {
            if q.first <= p {
                Some(q.first)
            } else if q.low <= p {
                Some(p)
            } else {
                None
            }
        }
        (OrderKind::Limit(p), Side::Sell) => {
            if q.first >= p {
                Some(q.first)
            } else if q.high >= p {
                Some(p)
            } else {
                None
            }
        }
    }
}

/// A limit order never trades worse than its limit, whatever the slippage model says.
#[inline]
pub fn cap_to_limit(kind: OrderKind, side: Side, price: f64) -> f64 {
    match (kind, side) {
        (OrderKind::Limit(p), Side::Buy) => price.min(p),
        (OrderKind::Limit(p), Side::Sell) => price.max(p),
        (OrderKind::Market, _) => price,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderKind::{Limit, Market};
    use Side::{Buy, Sell};

    #[test]
    fn table_open_phase() {
        let q = Quote::bar(10.0, 11.0, 9.0);
        // (kind, side, expected reference)
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
        ];
        for (kind, side, want) in cases {
            assert_eq!(reference_price(kind, side, q), want, "{kind:?} {side:?}");
        }
    }

    #[test]
    fn table_close_phase() {
        let q = Quote::at(10.0);
        let cases = [
            (Market, Buy, Some(10.0)),
            (Limit(10.0), Buy, Some(10.0)),
            (Limit(10.5), Buy, Some(10.0)),
            (Limit(9.9), Buy, None),
            (Limit(10.0), Sell, Some(10.0)),
            (Limit(9.5), Sell, Some(10.0)),
            (Limit(10.1), Sell, None),
        ];
        for (kind, side, want) in cases {
            assert_eq!(reference_price(kind, side, q), want, "{kind:?} {side:?}");
        }
    }

    #[test]
    fn limit_caps_slipped_price() {
        assert_eq!(cap_to_limit(Limit(10.0), Buy, 10.2), 10.0);
        assert_eq!(cap_to_limit(Limit(10.0), Sell, 9.8), 10.0);
        assert_eq!(cap_to_limit(Market, Buy, 10.2), 10.2);
    }
}
