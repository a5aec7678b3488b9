//! The order store and the order lifecycle.
//!
//! Every order ever submitted stays in `orders` (its id is its index). Working orders are
//! also listed in `working`, oldest first; an order that reaches a final status is marked
//! there as a tombstone and dropped at the next sweep, so cancel, fill and expire are O(1)
//! and "does symbol s have a working order" is a per-symbol counter.
//!
//! Lifecycle: accepted -> (partially filled ->)* filled | cancelled | expired | rejected.

use crate::rules::Reject;
use crate::types::{Order, OrderRequest, OrderStatus, Sizing};

/// How an order is tied to others. The store keeps the link; the broker will act on it
/// (cancel the other leg of an OCO pair, activate an OTO child) when such orders arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// One cancels the other(s) in the group.
    Oco { group: u64 },
    /// Activated when `parent` fills.
    Oto { parent: u64 },
    /// A stop-loss or take-profit leg of a bracket entered by `parent`.
    Bracket { parent: u64 },
}

#[derive(Debug, Default)]
pub struct OrderBook {
    orders: Vec<Order>,
    /// Trading day of the first bar on which a DAY order could fill (None until then).
    day: Vec<Option<i64>>,
    /// Working orders in submission order; entries whose order is no longer active are
    /// skipped and dropped by `sweep`.
    working: Vec<usize>,
    /// Spare buffer reused by sweeps, so a bar allocates nothing.
    spare: Vec<usize>,
    active_per_symbol: Vec<u32>,
    n_active: usize,
}

impl OrderBook {
    pub fn new(n_symbols: usize) -> Self {
        Self {
            active_per_symbol: vec![0; n_symbols],
            ..Self::default()
        }
    }

    pub fn all(&self) -> &[Order] {
        &self.orders
    }
    pub fn get(&self, id: u64) -> Option<&Order> {
        self.orders.get(usize::try_from(id).ok()?)
    }
    #[inline]
    pub fn order(&self, i: usize) -> &Order {
        &self.orders[i]
    }
    #[inline]
    pub fn has_working(&self) -> bool {
        self.n_active > 0
    }
    #[inline]
    pub fn has_working_for(&self, s: usize) -> bool {
        self.active_per_symbol[s] > 0
    }
    /// Working order indices, oldest first.
    pub fn working(&self) -> impl Iterator<Item = usize> + '_ {
        self.working
            .iter()
            .copied()
            .filter(|&i| self.orders[i].status.is_active())
    }

    /// Accept a validated request; returns the new order's index (= id).
    pub fn accept(&mut self, req: OrderRequest, bar: usize, eligible_bar: usize) -> usize {
        let i = self.orders.len();
        self.orders.push(Order {
            id: i as u64,
            symbol: req.symbol,
            side: req.side,
            kind: req.kind,
            tif: req.tif,
            size: match req.sizing {
                Sizing::Units => req.size,
                Sizing::Value | Sizing::EquityPct => f64::NAN,
            },
            sizing: req.sizing,
            amount: req.size,
            filled: 0.0,
            avg_price: f64::NAN,
            status: OrderStatus::Accepted,
            submitted_bar: bar,
            eligible_bar,
            closed_bar: None,
            reason_code: None,
            reason: None,
            link: None,
        });
        self.day.push(None);
        self.working.push(i);
        self.active_per_symbol[req.symbol] += 1;
        self.n_active += 1;
        i
    }

    /// The trading day a DAY order is good for, fixed on its first eligible bar.
    pub fn day_of(&mut self, i: usize, today: i64) -> i64 {
        *self.day[i].get_or_insert(today)
    }

    /// Fix the units of a value or percent order when it first trades.
    pub fn resolve_size(&mut self, i: usize, units: f64) {
        self.orders[i].size = units;
    }

    /// Record a fill of `qty` at `price`; the order is filled when nothing remains.
    pub fn fill(&mut self, i: usize, qty: f64, price: f64, bar: usize) {
        let o = &mut self.orders[i];
        debug_assert!(o.status.is_active());
        let before = o.filled;
        o.avg_price = if before == 0.0 {
            price
        } else {
            (o.avg_price * before + price * qty) / (before + qty)
        };
        if qty >= o.size - before {
            o.filled = o.size;
            self.finish(i, OrderStatus::Filled, bar);
        } else {
            o.filled = before + qty;
            o.status = OrderStatus::PartiallyFilled;
        }
    }

    /// Cancel a working order; false when it had already reached a final status.
    pub fn cancel(&mut self, i: usize, bar: usize) -> bool {
        if !self.orders[i].status.is_active() {
            return false;
        }
        self.finish(i, OrderStatus::Cancelled, bar);
        true
    }

    pub fn expire(&mut self, i: usize, bar: usize) {
        self.finish(i, OrderStatus::Expired, bar);
    }

    pub fn reject(&mut self, i: usize, bar: usize, why: Reject) {
        let o = &mut self.orders[i];
        o.reason_code = Some(why.code);
        o.reason = Some(why.message);
        self.finish(i, OrderStatus::Rejected, bar);
    }

    fn finish(&mut self, i: usize, status: OrderStatus, bar: usize) {
        let o = &mut self.orders[i];
        debug_assert!(o.status.is_active(), "order {i} is already {:?}", o.status);
        o.status = status;
        o.closed_bar = Some(bar);
        self.active_per_symbol[o.symbol] -= 1;
        self.n_active -= 1;
    }

    /// Visit the working orders oldest first; `f` may finish the order it is given (fill,
    /// expire, reject) but must not submit. Orders finished anywhere are dropped from the
    /// working list here.
    pub fn sweep(&mut self, mut f: impl FnMut(&mut Self, usize)) {
        let mut list = std::mem::take(&mut self.working);
        let mut kept = std::mem::take(&mut self.spare);
        kept.clear();
        for &i in &list {
            if self.orders[i].status.is_active() {
                f(self, i);
                if self.orders[i].status.is_active() {
                    kept.push(i);
                }
            }
        }
        // Orders accepted during the sweep (none today) go after the survivors.
        kept.append(&mut self.working);
        list.clear();
        self.spare = list;
        self.working = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Side;

    fn req(symbol: usize) -> OrderRequest {
        OrderRequest::market(symbol, Side::Buy, 2.0)
    }

    #[test]
    fn lifecycle_and_counters() {
        let mut b = OrderBook::new(2);
        let a = b.accept(req(0), 0, 1);
        let c = b.accept(req(1), 0, 1);
        assert!(b.has_working_for(0) && b.has_working_for(1));
        b.fill(a, 1.0, 10.0, 1);
        assert_eq!(b.order(a).status, OrderStatus::PartiallyFilled);
        b.fill(a, 1.0, 12.0, 1);
        assert_eq!(b.order(a).status, OrderStatus::Filled);
        assert_eq!(b.order(a).avg_price, 11.0);
        assert!(!b.has_working_for(0));
        assert!(b.cancel(c, 2));
        assert!(!b.cancel(c, 2), "a final order cannot be cancelled again");
        assert!(!b.has_working());
        assert_eq!(b.working().count(), 0);
    }

    #[test]
    fn many_cancels_are_linear() {
        let mut b = OrderBook::new(1);
        let n = 200_000;
        let ids: Vec<usize> = (0..n).map(|_| b.accept(req(0), 0, 1)).collect();
        for &i in ids.iter().rev() {
            assert!(b.cancel(i, 0));
        }
        assert!(!b.has_working());
        b.sweep(|_, _| unreachable!("no order is working"));
        assert_eq!(b.working.len(), 0);
    }

    #[test]
    fn sweep_keeps_submission_order() {
        let mut b = OrderBook::new(1);
        for _ in 0..5 {
            b.accept(req(0), 0, 1);
        }
        b.cancel(1, 0);
        let mut seen = vec![];
        b.sweep(|book, i| {
            seen.push(i);
            if i == 2 {
                book.expire(i, 1);
            }
        });
        assert_eq!(seen, vec![0, 2, 3, 4]);
        assert_eq!(b.working().collect::<Vec<_>>(), vec![0, 3, 4]);
    }
}
