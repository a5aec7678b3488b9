//! T+n: units bought on a trading day become sellable `t_plus` trading days later, and the
//! smallest order size (`min_size`) of boards such as Shanghai's STAR market.
//!
//! Trading days are the distinct calendar days (timestamps shifted by the run's day offset,
//! as DAY orders count them) the data has bars on, so a holiday is not a trading day.

use std::collections::VecDeque;

use crate::instrument::Instrument;
use crate::rules::{Reject, TOL};
use crate::types::Side;

/// Code of a sell of units still locked by T+n.
pub const T_PLUS: &str = "t_plus";
/// Code of an order below the instrument's smallest size.
pub const MIN_SIZE: &str = "min_size";

/// Units bought per symbol and trading day that are not yet sellable (only built when some
/// instrument has `t_plus > 0`).
#[derive(Debug)]
pub struct Settlement {
    t_plus: Vec<u32>,
    /// (trading day number of the run, units bought that day), oldest first.
    locked: Vec<VecDeque<(u32, f64)>>,
    day: i64,
    seq: u32,
}

impl Settlement {
    pub fn new(instruments: &[Instrument]) -> Option<Self> {
        if instruments.iter().all(|i| i.t_plus == 0) {
            return None;
        }
        Some(Self {
            t_plus: instruments.iter().map(|i| i.t_plus).collect(),
            locked: vec![VecDeque::new(); instruments.len()],
            day: i64::MIN,
            seq: 0,
        })
    }

    /// A bar of calendar day `day` begins: on a new trading day, release what has settled.
    pub fn begin_bar(&mut self, day: i64) {
        if day == self.day {
            return;
        }
        self.day = day;
        self.seq += 1;
        for (q, &n) in self.locked.iter_mut().zip(&self.t_plus) {
            while q.front().is_some_and(|&(d, _)| self.seq - d >= n) {
                q.pop_front();
            }
        }
    }

    /// `units` of symbol `s` were bought into a long position today.
    pub fn on_buy(&mut self, s: usize, units: f64) {
        if self.t_plus[s] == 0 || units <= 0.0 {
            return;
        }
        let q = &mut self.locked[s];
        match q.back_mut() {
            Some((d, x)) if *d == self.seq => *x += units,
            _ => q.push_back((self.seq, units)),
        }
    }

    /// Units of symbol `s` not yet sellable.
    pub fn locked(&self, s: usize) -> f64 {
        self.locked[s].iter().map(|&(_, x)| x).sum()
    }

    /// What of a long `position` may be sold today.
    pub fn sellable(&self, s: usize, position: f64) -> f64 {
        (position - self.locked(s)).max(0.0)
    }

    /// Reject a sell of `quantity` that reaches into locked units.
    pub fn check_sell(
        &self,
        s: usize,
        quantity: f64,
        position: f64,
        inst: &Instrument,
    ) -> Result<(), Reject> {
        let locked = self.locked(s);
        if locked <= 0.0 || inst.shortable {
            return Ok(());
        }
        let free = (position - locked).max(0.0);
        if quantity > free * (1.0 + TOL) + TOL {
            return Err(Reject::new(
                T_PLUS,
                format!(
                    "cannot sell {quantity} of {}: {locked} of the position {position} were bought within the last {} trading day(s) (T+{}), {free} is sellable",
                    inst.name, inst.t_plus, inst.t_plus
                ),
            ));
        }
        Ok(())
    }
}

/// Reject an order of `size` below the instrument's smallest size, unless it is a sell of
/// the whole long `position` (an odd remainder must be sellable).
pub fn check_min_size(
    side: Side,
    size: f64,
    position: f64,
    inst: &Instrument,
) -> Result<(), Reject> {
    let min = inst.min_size;
    if min <= 0.0 || size >= min * (1.0 - TOL) {
        return Ok(());
    }
    let closes =
        side == Side::Sell && position > 0.0 && (size - position).abs() <= TOL * position.max(1.0);
    if closes {
        return Ok(());
    }
    Err(Reject::new(
        MIN_SIZE,
        format!(
            "size {size} of {} is below its minimum order size {min}",
            inst.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(t_plus: u32) -> Instrument {
        let mut i = Instrument::new("600000.SH");
        i.t_plus = t_plus;
        i
    }

    #[test]
    fn t_plus_one_releases_on_the_next_trading_day() {
        let insts = [inst(1)];
        let mut st = Settlement::new(&insts).unwrap();
        st.begin_bar(10);
        st.on_buy(0, 300.0);
        assert_eq!(st.sellable(0, 300.0), 0.0);
        let r = st.check_sell(0, 100.0, 300.0, &insts[0]).unwrap_err();
        assert_eq!(r.code, T_PLUS);
        assert!(r.message.contains("600000.SH"));
        st.begin_bar(10); // another bar of the same day
        assert_eq!(st.sellable(0, 300.0), 0.0);
        st.begin_bar(13); // the next trading day, whatever the calendar gap
        assert_eq!(st.sellable(0, 300.0), 300.0);
        assert!(st.check_sell(0, 300.0, 300.0, &insts[0]).is_ok());
    }

    #[test]
    fn t_plus_two_counts_trading_days() {
        let insts = [inst(2)];
        let mut st = Settlement::new(&insts).unwrap();
        st.begin_bar(1);
        st.on_buy(0, 100.0);
        st.begin_bar(2);
        st.on_buy(0, 50.0);
        assert_eq!(st.sellable(0, 150.0), 0.0);
        st.begin_bar(3);
        assert_eq!(st.sellable(0, 150.0), 100.0);
        st.begin_bar(4);
        assert_eq!(st.sellable(0, 150.0), 150.0);
        assert!(Settlement::new(&[inst(0)]).is_none());
    }

    #[test]
    fn min_size_allows_closing_an_odd_remainder() {
        let mut i = inst(0);
        i.min_size = 200.0;
        assert!(check_min_size(Side::Buy, 200.0, 0.0, &i).is_ok());
        assert_eq!(
            check_min_size(Side::Buy, 199.0, 0.0, &i).unwrap_err().code,
            MIN_SIZE
        );
        assert!(check_min_size(Side::Sell, 150.0, 150.0, &i).is_ok());
        assert!(check_min_size(Side::Sell, 150.0, 350.0, &i).is_err());
    }
}
