//! Daily price limits and suspended bars.
//!
//! A price band is a dated schedule per symbol: from each band's start time on, the day's
//! prices must lie within `reference x (1 - down)` and `reference x (1 + up)`, rounded to the
//! instrument's tick. The reference is the symbol's last close of a previous trading day, or
//! the data's `pre_close` column when it has a value (the exchange's official reference after
//! corporate actions). A band without figures means no limit from its start on (a new
//! listing's first days, say). Without a reference (the symbol's first bar, no `pre_close`)
//! there is no band: nothing is guessed.

use crate::data::Bars;
use crate::error::{EngineError, Result};
use crate::rules::Reject;
use crate::types::{OrderKind, Side};

/// Code of an order priced beyond the day's band.
pub const PRICE_LIMIT: &str = "price_limit";

/// One row of a price-limit schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    /// In force for bars at or after this time (ns since the epoch); `i64::MIN`: always.
    pub from_ns: i64,
    /// Fractions of the reference close the price may rise / fall; NaN: no limit.
    pub up: f64,
    pub down: f64,
}

impl Band {
    pub fn none(from_ns: i64) -> Self {
        Self {
            from_ns,
            up: f64::NAN,
            down: f64::NAN,
        }
    }
}

/// Check schedules as the run configuration gives them (`name` for messages).
pub fn check_schedule(name: &str, bands: &[Band]) -> Result<()> {
    let bad = |what: String| {
        Err(
            EngineError::config(format!("price_limits[{name:?}]: {what}"))
                .with_field("price_limits", name.to_string()),
        )
    };
    for (j, b) in bands.iter().enumerate() {
        if b.up.is_nan() != b.down.is_nan() {
            return bad(format!(
                "band {j}: give both up and down, or neither (no limit)"
            ));
        }
        let sane = b.up.is_finite() && b.up > 0.0 && b.down > 0.0 && b.down < 1.0;
        if !b.up.is_nan() && !sane {
            return bad(format!(
                "band {j}: up must be > 0 and down in (0, 1), got up {}, down {}",
                b.up, b.down
            ));
        }
        if j > 0 && b.from_ns <= bands[j - 1].from_ns {
            return bad(format!("band {j}: start times must ascend"));
        }
    }
    Ok(())
}

/// Per-symbol band state of a run (only built when some symbol has a schedule).
#[derive(Debug)]
pub struct Limits {
    schedules: Vec<Vec<Band>>,
    ticks: Vec<f64>,
    /// Last close seen of each symbol (NaN: none yet), from the bars before `seen`.
    last_close: Vec<f64>,
    seen: usize,
    /// Today's (down, up) prices; NaN: no limit today.
    band: Vec<(f64, f64)>,
    day: i64,
}

fn round_to(x: f64, tick: f64) -> f64 {
    if tick > 0.0 {
        // Half up, as the exchanges round, with slack so that 9.045 in binary is 9.05.
        ((x / tick) + 0.5 + 1e-9).floor() * tick
    } else {
        x
    }
}

impl Limits {
    /// None when no symbol has a schedule (the plain path pays nothing).
    pub fn new(schedules: Vec<Vec<Band>>, ticks: Vec<f64>) -> Option<Self> {
        if schedules.iter().all(|s| s.is_empty()) {
            return None;
        }
        let n = schedules.len();
        Some(Self {
            schedules,
            ticks,
            last_close: vec![f64::NAN; n],
            seen: 0,
            band: vec![(f64::NAN, f64::NAN); n],
            day: i64::MIN,
        })
    }

    /// Before bar `t` of trading day `day` trades: take in the closes of the bars since the
    /// last call (those a driver skipped too) and, on a new day, fix each symbol's band from
    /// its reference close.
    pub fn begin_bar(&mut self, bars: &Bars, t: usize, day: i64) {
        let ns = bars.n_symbols;
        for u in self.seen..t {
            for (s, c) in bars.close[u * ns..(u + 1) * ns].iter().enumerate() {
                if !c.is_nan() {
                    self.last_close[s] = *c;
                }
            }
        }
        self.seen = self.seen.max(t);
        if day == self.day {
            return;
        }
        self.day = day;
        let ts = bars.ts[t];
        let pre = bars.extra("pre_close");
        for s in 0..self.schedules.len() {
            let row = self.schedules[s]
                .iter()
                .rev()
                .find(|b| b.from_ns <= ts)
                .copied();
            let reference = match pre.map(|p| p[bars.idx(t, s)]) {
                Some(p) if p.is_finite() && p > 0.0 => p,
                _ => self.last_close[s],
            };
            self.band[s] = match row {
                Some(b) if !b.up.is_nan() && reference.is_finite() => {
                    let tick = self.ticks[s];
                    let down = round_to(reference * (1.0 - b.down), tick).max(tick);
                    (down, round_to(reference * (1.0 + b.up), tick))
                }
                _ => (f64::NAN, f64::NAN),
            };
        }
    }

    /// Today's (down, up) prices of symbol `s`, None without a limit.
    #[inline]
    pub fn band(&self, s: usize) -> Option<(f64, f64)> {
        let b = self.band[s];
        (!b.0.is_nan()).then_some(b)
    }

    fn slack(&self, s: usize, level: f64) -> f64 {
        let tick = self.ticks[s];
        if tick > 0.0 {
            tick / 2.0
        } else {
            1e-9 * level.abs()
        }
    }

    /// True when the whole bar sits at the limit that stops `side` from trading: a bar
    /// locked at limit-up has no sellers for a buy, one locked at limit-down no buyers.
    pub fn locked(&self, s: usize, side: Side, high: f64, low: f64) -> bool {
        let Some((down, up)) = self.band(s) else {
            return false;
        };
        let at = match side {
            Side::Buy => up,
            Side::Sell => down,
        };
        let e = self.slack(s, at);
        (high - low).abs() <= e && (high - at).abs() <= e && (low - at).abs() <= e
    }

    /// `price` kept within the day's band.
    #[inline]
    pub fn clamp(&self, s: usize, price: f64) -> f64 {
        match self.band(s) {
            Some((down, up)) => price.clamp(down, up),
            None => price,
        }
    }

    /// Why an order's limit price is invalid today (beyond the band), if it is. A stop
    /// beyond the band is not an exchange order: it simply cannot trigger today.
    pub fn outside(&self, s: usize, name: &str, kind: OrderKind) -> Option<Reject> {
        let (down, up) = self.band(s)?;
        let px = kind.limit_price()?;
        let e = self.slack(s, px);
        (px > up + e || px < down - e).then(|| {
            Reject::new(
                PRICE_LIMIT,
                format!(
                    "limit price {px} of {name} lies beyond today's price limits [{down}, {up}]"
                ),
            )
        })
    }
}

/// Names of a suspended-flag data column: ours, and bt-data's (xtdata's `suspendFlag`).
pub const SUSPENDED_COLUMNS: [&str; 2] = ["suspended", "suspend_flag"];

/// Does the data carry a suspended-flag column?
pub fn has_flag_column(bars: &Bars) -> bool {
    bars.extra
        .iter()
        .any(|c| SUSPENDED_COLUMNS.contains(&c.name.as_str()))
}

/// True when symbol `s` trades nothing on bar `t`: the data's suspended flag is non-zero
/// there, or (when `zero_volume` is set) the bar has no volume.
#[inline]
pub fn suspended(bars: &Bars, t: usize, s: usize, zero_volume: bool) -> bool {
    let k = bars.idx(t, s);
    if zero_volume && bars.volume[k] == 0.0 {
        return true;
    }
    !bars.extra.is_empty()
        && SUSPENDED_COLUMNS
            .iter()
            .filter_map(|name| bars.extra(name))
            .any(|c| c[k] != 0.0 && !c[k].is_nan())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Column;

    fn bars_of<'a>(
        ts: &'a [i64],
        close: &'a [f64],
        high: &'a [f64],
        extra: &'a [Column],
    ) -> Bars<'a> {
        Bars {
            ts,
            open: close,
            high,
            low: close,
            close,
            volume: close,
            n_bars: ts.len(),
            n_symbols: 1,
            extra,
        }
    }

    #[test]
    fn band_from_previous_close_rounded_half_up() {
        let ts = [0, 86_400_000_000_000];
        let close = [10.05, 11.06];
        let bars = bars_of(&ts, &close, &close, &[]);
        let sched = vec![vec![Band {
            from_ns: i64::MIN,
            up: 0.1,
            down: 0.1,
        }]];
        let mut l = Limits::new(sched, vec![0.01]).unwrap();
        l.begin_bar(&bars, 0, 0);
        assert_eq!(l.band(0), None, "no reference on the first bar");
        l.begin_bar(&bars, 1, 1);
        let (down, up) = l.band(0).unwrap();
        // 10.05 x 1.1 = 11.055 -> 11.06, 10.05 x 0.9 = 9.045 -> 9.05.
        assert!((up - 11.06).abs() < 1e-9 && (down - 9.05).abs() < 1e-9);
        assert!(l.locked(0, Side::Buy, 11.06, 11.06));
        assert!(!l.locked(0, Side::Sell, 11.06, 11.06));
        assert!(!l.locked(0, Side::Buy, 11.06, 11.0));
        assert_eq!(l.clamp(0, 12.0), up);
        let r = l.outside(0, "X", OrderKind::Limit(11.07)).unwrap();
        assert_eq!(r.code, PRICE_LIMIT);
        assert!(l.outside(0, "X", OrderKind::Limit(11.06)).is_none());
        assert!(l.outside(0, "X", OrderKind::Stop(9.04)).is_none());
    }

    #[test]
    fn pre_close_column_wins_and_dated_rows_apply() {
        let ts = [0, 100, 200];
        let close = [10.0, 10.0, 10.0];
        let pre = Column {
            name: "pre_close".into(),
            values: vec![f64::NAN, 20.0, f64::NAN],
        };
        let extra = [pre];
        let bars = bars_of(&ts, &close, &close, &extra);
        let sched = vec![vec![
            Band {
                from_ns: i64::MIN,
                up: 0.1,
                down: 0.1,
            },
            Band::none(200),
        ]];
        let mut l = Limits::new(sched, vec![0.01]).unwrap();
        l.begin_bar(&bars, 0, 0);
        l.begin_bar(&bars, 1, 1);
        assert_eq!(l.band(0).map(|b| (b.1 * 100.0).round()), Some(2200.0));
        l.begin_bar(&bars, 2, 2);
        assert_eq!(l.band(0), None, "the no-limit row from ts 200");
    }

    #[test]
    fn schedules_are_checked() {
        assert!(check_schedule(
            "X",
            &[Band {
                from_ns: 0,
                up: 0.1,
                down: f64::NAN
            }]
        )
        .is_err());
        assert!(check_schedule("X", &[Band::none(5), Band::none(5)]).is_err());
        assert!(check_schedule(
            "X",
            &[Band {
                from_ns: 0,
                up: 0.44,
                down: 0.36
            }]
        )
        .is_ok());
    }

    #[test]
    fn suspended_by_flag_or_zero_volume() {
        let ts = [0, 1];
        let close = [10.0, 0.0];
        let flag = Column {
            name: "suspended".into(),
            values: vec![1.0, 0.0],
        };
        let extra = [flag];
        let bars = bars_of(&ts, &close, &close, &extra);
        assert!(suspended(&bars, 0, 0, false));
        assert!(!suspended(&bars, 1, 0, false));
        assert!(suspended(&bars, 1, 0, true));
    }
}
