//! The order store and the order lifecycle.
//!
//! Every order ever submitted stays in `orders` (its id is its index). Working orders are
//! also listed in `working`, oldest first; an order that reaches a final status is marked
//! there as a tombstone and dropped at the next sweep, so cancel, fill and expire are O(1)
//! and "does symbol s have a working order" is a per-symbol counter.
//!
//! Lifecycle: [pending ->] accepted -> (partially filled ->)* filled | cancelled | expired |
//! rejected. Pending orders (a bracket's exits, one-triggers-other children) wait for their
//! parent outside the working list.

use crate::mem::Chunked;
use crate::rules::Reject;
use crate::types::{Bracket, Order, OrderKind, OrderRequest, OrderStatus, Sizing};

/// How an order is tied to others; the broker acts on it when an order fills or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// A fill of one member cancels the other members of the group.
    Oco { group: u64 },
    /// Activated when `parent` has filled whole; cancelled if it ends otherwise.
    Oto { parent: u64 },
    /// A stop-loss or take-profit exit of the entry `parent`: sized as the entry fills, and
    /// a fill of one exit shrinks the other by as much.
    Bracket { parent: u64 },
}

#[derive(Debug, Default)]
pub struct OrderBook {
    orders: Chunked<Order>,
    /// Trading day of the first bar on which a DAY order could fill (None until then), by
    /// order index; grown only as far as the DAY orders reach, so runs without any hold none.
    day: Vec<Option<i64>>,
    /// Working orders in submission order; entries whose order is no longer active are
    /// skipped and dropped by `sweep`.
    working: Vec<usize>,
    /// Spare buffer reused by sweeps, so a bar allocates nothing.
    spare: Vec<usize>,
    active_per_symbol: Vec<u32>,
    n_active: usize,
    /// Orders linked to a parent (bracket exits, OTO children), by parent index, grown only
    /// as far as the last parent (an empty Vec allocates nothing, and a bar never hashes).
    children: Vec<Vec<usize>>,
    /// Members of each OCO group, by group id.
    groups: Vec<Vec<usize>>,
}

impl OrderBook {
    pub fn new(n_symbols: usize) -> Self {
        Self {
            active_per_symbol: vec![0; n_symbols],
            ..Self::default()
        }
    }

    pub fn all(&self) -> &Chunked<Order> {
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

    /// Accept a validated request; returns the new order's index (= id). A `link` to a
    /// parent makes it pending.
    pub fn accept(
        &mut self,
        req: OrderRequest,
        bar: usize,
        eligible_bar: usize,
        link: Option<Link>,
    ) -> usize {
        let i = self.orders.len();
        let pending = matches!(link, Some(Link::Oto { .. } | Link::Bracket { .. }));
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
            status: if pending {
                OrderStatus::Pending
            } else {
                OrderStatus::Accepted
            },
            submitted_bar: bar,
            eligible_bar,
            closed_bar: None,
            why: None,
            link,
            stop_price: req.kind.stop_price().unwrap_or(f64::NAN),
            triggered: false,
            trail_ref: f64::NAN,
            reduce_only: matches!(link, Some(Link::Bracket { .. })),
            bracket: (req.bracket != Bracket::default()).then(|| Box::new(req.bracket)),
            notional_filled: 0.0,
            commission: 0.0,
            tax: 0.0,
            liquidation: false,
        });
        if let Some(Link::Oto { parent } | Link::Bracket { parent }) = link {
            let p = parent as usize;
            if p >= self.children.len() {
                self.children.resize_with(p + 1, Vec::new);
            }
            self.children[p].push(i);
        }
        if !pending {
            self.work(i);
        }
        i
    }

    fn work(&mut self, i: usize) {
        self.working.push(i);
        self.active_per_symbol[self.orders[i].symbol] += 1;
        self.n_active += 1;
    }

    /// A pending order starts working, first eligible on `eligible_bar`.
    pub fn activate(&mut self, i: usize, eligible_bar: usize) {
        let o = &mut self.orders[i];
        debug_assert_eq!(o.status, OrderStatus::Pending);
        o.status = OrderStatus::Accepted;
        o.eligible_bar = eligible_bar;
        self.work(i);
    }

    /// Orders linked to parent `i` (bracket exits, OTO children).
    #[inline]
    pub fn children_of(&self, i: usize) -> &[usize] {
        self.children.get(i).map_or(&[], Vec::as_slice)
    }

    /// The members of OCO group `group`.
    pub fn oco_members(&self, group: u64) -> &[usize] {
        self.groups
            .get(group as usize)
            .map_or(&[], |v| v.as_slice())
    }

    /// Put orders in a new OCO group; returns the group id.
    pub fn group(&mut self, members: &[usize]) -> u64 {
        let g = self.groups.len() as u64;
        for &i in members {
            self.orders[i].link = Some(Link::Oco { group: g });
        }
        self.groups.push(members.to_vec());
        g
    }

    /// Change an open order's prices or size (already checked by the broker).
    pub fn modify(&mut self, i: usize, kind: OrderKind, size: Option<f64>) {
        let o = &mut self.orders[i];
        o.kind = kind;
        if let Some(p) = kind.stop_price() {
            o.stop_price = p;
        }
        if let Some(size) = size {
            if o.size.is_nan() {
                o.amount = size;
            } else {
                o.size = size;
                o.amount = size;
            }
        }
    }

    /// Grow or shrink a bracket exit to `size` units.
    pub fn set_size(&mut self, i: usize, size: f64) {
        let o = &mut self.orders[i];
        o.size = size;
        o.amount = size;
    }

    /// The kind an exit gets once its entry's price is known.
    pub fn set_kind(&mut self, i: usize, kind: OrderKind) {
        let o = &mut self.orders[i];
        o.kind = kind;
        o.stop_price = kind.stop_price().unwrap_or(f64::NAN);
    }

    /// A stop was reached.
    pub fn trigger(&mut self, i: usize) {
        self.orders[i].triggered = true;
    }

    /// A trailing stop's best price and stop price after a bar.
    pub fn trail(&mut self, i: usize, best: f64, stop: f64) {
        let o = &mut self.orders[i];
        o.trail_ref = best;
        o.stop_price = stop;
    }

    /// The trading day a DAY order is good for, fixed on its first eligible bar.
    pub fn day_of(&mut self, i: usize, today: i64) -> i64 {
        if i >= self.day.len() {
            self.day.resize(i + 1, None);
        }
        *self.day[i].get_or_insert(today)
    }

    /// Fix the units of a value or percent order when it first trades.
    pub fn resolve_size(&mut self, i: usize, units: f64) {
        self.orders[i].size = units;
    }

    /// Record a fill of `qty` at `price`; the order is filled when nothing remains.
    pub fn fill(&mut self, i: usize, qty: f64, price: f64, bar: usize, fees: FillFees) {
        let o = &mut self.orders[i];
        debug_assert!(o.status.is_active());
        o.notional_filled += fees.notional;
        o.commission += fees.commission;
        o.tax += fees.tax;
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

    /// Make working order `i` a margin-call liquidation: it only reduces the position, and
    /// it goes before every other working order (after earlier liquidations).
    pub fn mark_liquidation(&mut self, i: usize) {
        let o = &mut self.orders[i];
        o.reduce_only = true;
        o.liquidation = true;
        if let Some(at) = self.working.iter().position(|&j| j == i) {
            self.working.remove(at);
            let first = self
                .working
                .iter()
                .take_while(|&&j| self.orders[j].liquidation)
                .count();
            self.working.insert(first, i);
        }
    }

    /// Cancel a working or pending order; false when it had already reached a final status.
    pub fn cancel(&mut self, i: usize, bar: usize) -> bool {
        if !self.orders[i].status.is_open() {
            return false;
        }
        self.finish(i, OrderStatus::Cancelled, bar);
        true
    }

    /// Cancel with a reason (an IOC's unfilled rest, a FOK that could not fill whole, an exit
    /// whose position is gone).
    pub fn cancel_because(&mut self, i: usize, bar: usize, why: Reject) -> bool {
        if !self.cancel(i, bar) {
            return false;
        }
        let o = &mut self.orders[i];
        o.why = Some(Box::new(why));
        true
    }

    pub fn expire(&mut self, i: usize, bar: usize) {
        self.finish(i, OrderStatus::Expired, bar);
    }

    pub fn reject(&mut self, i: usize, bar: usize, why: Reject) {
        let o = &mut self.orders[i];
        o.why = Some(Box::new(why));
        self.finish(i, OrderStatus::Rejected, bar);
    }

    fn finish(&mut self, i: usize, status: OrderStatus, bar: usize) {
        let o = &mut self.orders[i];
        debug_assert!(o.status.is_open(), "order {i} is already {:?}", o.status);
        let was_working = o.status.is_active();
        o.status = status;
        o.closed_bar = Some(bar);
        if was_working {
            self.active_per_symbol[o.symbol] -= 1;
            self.n_active -= 1;
        }
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

/// What a fill adds to its order's cost accumulators.
#[derive(Clone, Copy, Debug, Default)]
pub struct FillFees {
    pub notional: f64,
    pub commission: f64,
    pub tax: f64,
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
        let a = b.accept(req(0), 0, 1, None);
        let c = b.accept(req(1), 0, 1, None);
        assert!(b.has_working_for(0) && b.has_working_for(1));
        b.fill(a, 1.0, 10.0, 1, FillFees::default());
        assert_eq!(b.order(a).status, OrderStatus::PartiallyFilled);
        b.fill(a, 1.0, 12.0, 1, FillFees::default());
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
        let ids: Vec<usize> = (0..n).map(|_| b.accept(req(0), 0, 1, None)).collect();
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
            b.accept(req(0), 0, 1, None);
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
