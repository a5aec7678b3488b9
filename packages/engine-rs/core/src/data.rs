//! Market data as borrowed columns: time x symbols, row-major, one shared timestamp index.

use crate::error::{EngineError, Result};
use crate::time::format_ts;

/// Borrowed OHLCV columns. Element `[t * n_symbols + s]` is symbol `s` at bar `t`.
/// A NaN close means "no bar for this symbol at this time".
#[derive(Clone, Copy, Debug)]
pub struct Bars<'a> {
    pub ts: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
    pub n_bars: usize,
    pub n_symbols: usize,
}

impl<'a> Bars<'a> {
    /// Check shapes, timestamp order and every bar's prices, naming the first offender.
    pub fn new(
        ts: &'a [i64],
        open: &'a [f64],
        high: &'a [f64],
        low: &'a [f64],
        close: &'a [f64],
        volume: &'a [f64],
        n_symbols: usize,
    ) -> Result<Self> {
        let n_bars = ts.len();
        if n_bars == 0 {
            return Err(EngineError::data("no bars: the timestamp index is empty"));
        }
        if n_symbols == 0 {
            return Err(EngineError::data("no symbols: the data has zero columns"));
        }
        let cells = n_bars * n_symbols;
        for (name, col) in [
            ("open", open),
            ("high", high),
            ("low", low),
            ("close", close),
            ("volume", volume),
        ] {
            if col.len() != cells {
                return Err(EngineError::data(format!(
                    "column {name} has {} values, expected {n_bars} bars x {n_symbols} symbols = {cells}",
                    col.len()
                )));
            }
        }
        for t in 1..n_bars {
            if ts[t] <= ts[t - 1] {
                let what = if ts[t] == ts[t - 1] {
                    "duplicate"
                } else {
                    "unsorted"
                };
                return Err(EngineError::data(format!(
                    "{what} timestamps: bar {t} ({}) is not after bar {} ({})",
                    format_ts(ts[t]),
                    t - 1,
                    format_ts(ts[t - 1])
                )));
            }
        }
        let bars = Self {
            ts,
            open,
            high,
            low,
            close,
            volume,
            n_bars,
            n_symbols,
        };
        // Fast pass: branch-free per chunk so it vectorizes; the detailed check only runs on a
        // chunk that holds a suspicious cell, so that the message can name the exact problem.
        const CHUNK: usize = 256;
        let mut start = 0;
        while start < cells {
            let end = (start + CHUNK).min(cells);
            let mut all_ok = true;
            for i in start..end {
                let (o, h, l, c, v) = (open[i], high[i], low[i], close[i], volume[i]);
                let good = (o > 0.0)
                    & (l > 0.0)
                    & (h < f64::INFINITY)
                    & (0.0..f64::INFINITY).contains(&v)
                    & (l <= o)
                    & (o <= h)
                    & (l <= c)
                    & (c <= h);
                let missing = o.is_nan() & h.is_nan() & l.is_nan() & c.is_nan();
                all_ok &= good | missing;
            }
            if !all_ok {
                for i in start..end {
                    bars.check_cell(i / n_symbols, i % n_symbols)?;
                }
            }
            start = end;
        }
        Ok(bars)
    }

    fn check_cell(&self, t: usize, s: usize) -> Result<()> {
        let i = self.idx(t, s);
        let (o, h, l, c, v) = (
            self.open[i],
            self.high[i],
            self.low[i],
            self.close[i],
            self.volume[i],
        );
        let where_ = || format!("bar {t} ({}), symbol #{s}", format_ts(self.ts[t]));
        let present = [o, h, l, c].iter().filter(|x| !x.is_nan()).count();
        if present == 0 {
            return Ok(()); // no bar for this symbol now
        }
        if present != 4 {
            return Err(EngineError::data(format!(
                "partial bar at {}: open/high/low/close must be all present or all NaN (got {o}, {h}, {l}, {c})",
                where_()
            )));
        }
        for (name, x) in [("open", o), ("high", h), ("low", l), ("close", c)] {
            if !x.is_finite() || x <= 0.0 {
                return Err(EngineError::data(format!(
                    "{name} must be a finite price > 0 at {}, got {x}",
                    where_()
                )));
            }
        }
        if h < l {
            return Err(EngineError::data(format!(
                "high {h} < low {l} at {}",
                where_()
            )));
        }
        if o > h || o < l || c > h || c < l {
            return Err(EngineError::data(format!(
                "open {o} / close {c} outside the bar's range [{l}, {h}] at {}",
                where_()
            )));
        }
        if v.is_nan() || v < 0.0 || v.is_infinite() {
            return Err(EngineError::data(format!(
                "volume must be a finite number >= 0 at {}, got {v}",
                where_()
            )));
        }
        Ok(())
    }

    #[inline]
    pub fn idx(&self, t: usize, s: usize) -> usize {
        t * self.n_symbols + s
    }

    /// True when symbol `s` has a bar at time `t`.
    #[inline]
    pub fn has_bar(&self, t: usize, s: usize) -> bool {
        !self.close[self.idx(t, s)].is_nan()
    }
}
