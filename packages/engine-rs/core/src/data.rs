//! Market data: `BarData` owns the bars of a run (validated once, aligned on one time index,
//! never changed afterwards); `Bars` is the borrowed, copyable view every loop reads.
//! Layout: time x symbols, row-major, one shared timestamp index.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::mem::copy_to_vec;
use crate::time::format_ts;

/// The price and volume fields, in the order `BarData::field_at` numbers them.
pub const FIELDS: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// An extra per-symbol float column (time x symbols, row-major), e.g. `pre_close` or a
/// suspended flag, so that data a store keeps can reach the engine's rules. NaN: no value.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub values: Vec<f64>,
}

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
    /// Optional extra columns, same layout as the prices.
    pub extra: &'a [Column],
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
            extra: &[],
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

    /// An extra column by name (None when the data has none of that name).
    pub fn extra(&self, name: &str) -> Option<&'a [f64]> {
        self.extra
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.values.as_slice())
    }
}

/// One symbol's bars as the user gave them, before alignment. `label` says where they came
/// from in messages (e.g. `data.csv (symbol 'AAA')`); `rows` maps each bar to its row in the
/// user's input when that differs from its position (long tables hold many symbols).
#[derive(Clone, Copy, Debug)]
pub struct SymbolInput<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub ts: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
    pub rows: Option<&'a [i64]>,
    pub extra: &'a [(&'a str, &'a [f64])],
}

/// Python-style text of a float (`nan`, `inf`, `-1.0`, `1e+300`) for messages that quote
/// the user's value.
fn num(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-4) {
        let t = format!("{v:e}");
        match t.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => t,
        }
    } else if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

impl SymbolInput<'_> {
    fn row(&self, i: usize) -> i64 {
        self.rows.map_or(i as i64, |r| r[i])
    }

    fn err(&self, check: &'static str, i: usize, column: &'static str, msg: String) -> EngineError {
        EngineError::data(format!("{}: {msg}", self.label))
            .with_field("check", check)
            .with_field("symbol", self.name)
            .with_field("row", self.row(i).to_string())
            .with_field("time", format_ts(self.ts[i]))
            .with_field("column", column)
    }

    /// Every check on one symbol's bars, in the order a user fixes them: lengths, time order,
    /// prices per column, volume, high >= low, open/close inside the range. One fast
    /// branch-free pass decides whether the detailed (message-building) scans run at all.
    fn validate(&self) -> Result<()> {
        let n = self.ts.len();
        for (name, col) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
            ("volume", self.volume),
        ] {
            if col.len() != n {
                return Err(EngineError::data(format!(
                    "{}: column {name} has {} values for {n} timestamps",
                    self.label,
                    col.len()
                ))
                .with_field("symbol", self.name)
                .with_field("column", name));
            }
        }
        for (name, col) in self.extra {
            if col.len() != n {
                return Err(EngineError::data(format!(
                    "{}: column {name} has {} values for {n} timestamps",
                    self.label,
                    col.len()
                ))
                .with_field("symbol", self.name));
            }
        }
        if let Some(r) = self.rows {
            if r.len() != n {
                return Err(EngineError::data(format!(
                    "{}: {} row numbers for {n} bars",
                    self.label,
                    r.len()
                )));
            }
        }
        if n == 0 {
            return Err(EngineError::data(format!("{}: no rows", self.label))
                .with_field("check", "no_rows")
                .with_field("symbol", self.name));
        }
        if let Some(i) = (1..n).find(|&i| self.ts[i] <= self.ts[i - 1]) {
            let (check, what) = if self.ts[i] == self.ts[i - 1] {
                ("duplicate_timestamps", "duplicate")
            } else {
                ("unsorted_timestamps", "unsorted")
            };
            return Err(self.err(
                check,
                i,
                "datetime",
                format!(
                    "{what} timestamps at row {}: {} is not after {} (sort the data and drop duplicates first)",
                    self.row(i),
                    format_ts(self.ts[i]),
                    format_ts(self.ts[i - 1])
                ),
            ));
        }
        // Iterators rather than indexing: no bounds checks, so the pass vectorizes.
        let mut ok = true;
        for ((((&o, &h), &l), &c), &v) in self
            .open
            .iter()
            .zip(self.high)
            .zip(self.low)
            .zip(self.close)
            .zip(self.volume)
        {
            ok &= (o > 0.0)
                & (l > 0.0)
                & (c > 0.0)
                & (h < f64::INFINITY)
                & (0.0..f64::INFINITY).contains(&v)
                & (l <= h)
                & (l <= o)
                & (o <= h)
                & (l <= c)
                & (c <= h);
        }
        if ok {
            return Ok(());
        }
        let bad_price = |x: f64| !x.is_finite() || x <= 0.0;
        for (name, col) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
        ] {
            if let Some(i) = col.iter().position(|&x| bad_price(x)) {
                let count = col.iter().filter(|&&x| bad_price(x)).count();
                return Err(self.err(
                    "bad_price",
                    i,
                    name,
                    format!(
                        "column '{name}' must hold finite prices > 0; row {} ({}) is {} ({count} bad rows in all)",
                        self.row(i),
                        format_ts(self.ts[i]),
                        num(col[i])
                    ),
                )
                .with_field("value", num(col[i])));
            }
        }
        if let Some(i) = self
            .volume
            .iter()
            .position(|&v| !(v.is_finite() && v >= 0.0))
        {
            return Err(self
                .err(
                    "bad_volume",
                    i,
                    "volume",
                    format!(
                        "column 'volume' must be finite and >= 0; row {} is {}",
                        self.row(i),
                        num(self.volume[i])
                    ),
                )
                .with_field("value", num(self.volume[i])));
        }
        if let Some(i) = (0..n).find(|&i| self.high[i] < self.low[i]) {
            return Err(self.err(
                "high_below_low",
                i,
                "high",
                format!(
                    "high < low at row {} ({}): high={}, low={}",
                    self.row(i),
                    format_ts(self.ts[i]),
                    num(self.high[i]),
                    num(self.low[i])
                ),
            ));
        }
        let outside = |i: usize| {
            let (o, h, l, c) = (self.open[i], self.high[i], self.low[i], self.close[i]);
            o > h || o < l || c > h || c < l
        };
        if let Some(i) = (0..n).find(|&i| outside(i)) {
            return Err(self.err(
                "outside_range",
                i,
                if self.open[i] > self.high[i] || self.open[i] < self.low[i] {
                    "open"
                } else {
                    "close"
                },
                format!(
                    "open/close outside [low, high] at row {} ({}): open={}, high={}, low={}, close={}",
                    self.row(i),
                    format_ts(self.ts[i]),
                    num(self.open[i]),
                    num(self.high[i]),
                    num(self.low[i]),
                    num(self.close[i])
                ),
            ));
        }
        Ok(())
    }
}

/// Memory another owner keeps alive and nobody writes to while it is shared (e.g. a
/// read-only buffer of Ray's object store, mapped into several processes), read in place.
pub trait SharedValues<T>: Send + Sync {
    fn values(&self) -> &[T];
}

/// A column of [`BarData`]: memory the engine owns, or shared memory read in place, so that
/// processes that map the same data need no copy of it each.
pub enum Values<T: 'static> {
    Owned(Vec<T>),
    Shared(Arc<dyn SharedValues<T>>),
}

impl<T> Deref for Values<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Values::Owned(v) => v,
            Values::Shared(s) => s.values(),
        }
    }
}

impl<T> From<Vec<T>> for Values<T> {
    fn from(v: Vec<T>) -> Self {
        Values::Owned(v)
    }
}

impl<T: Clone> Clone for Values<T> {
    fn clone(&self) -> Self {
        match self {
            Values::Owned(v) => Values::Owned(v.clone()),
            Values::Shared(s) => Values::Shared(Arc::clone(s)),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Values<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Values<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

/// An error naming the first symbol that appears twice.
fn unique_symbols<'a>(names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        if seen.contains(&name) {
            return Err(EngineError::data(format!("symbol {name:?} appears twice"))
                .with_field("symbol", name));
        }
        seen.push(name);
    }
    Ok(())
}

/// The bars of a run: validated once when built, aligned on the union of the symbols'
/// timestamps (a symbol without a bar at a time holds NaN there: no bar, never a price), and
/// immutable afterwards, so that many runs can share them, on several threads.
#[derive(Clone, Debug, PartialEq)]
pub struct BarData {
    ts: Values<i64>,
    open: Values<f64>,
    high: Values<f64>,
    low: Values<f64>,
    close: Values<f64>,
    volume: Values<f64>,
    extra: Vec<Column>,
    symbols: Vec<String>,
}

impl BarData {
    /// Validate every symbol's bars (errors name the symbol, row and column) and align them.
    pub fn from_symbols(inputs: &[SymbolInput]) -> Result<Self> {
        if inputs.is_empty() {
            return Err(EngineError::data("no symbols: the data is empty"));
        }
        unique_symbols(inputs.iter().map(|i| i.name))?;
        for inp in inputs {
            inp.validate()?;
        }
        let ns = inputs.len();
        let mut extra_names: Vec<&str> = Vec::new();
        for inp in inputs {
            for (name, _) in inp.extra {
                if !extra_names.contains(name) {
                    extra_names.push(name);
                }
            }
        }
        let ts: Vec<i64> = if ns == 1 {
            copy_to_vec(inputs[0].ts)
        } else {
            let mut all: Vec<i64> = inputs.iter().flat_map(|i| i.ts.iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        let symbols = inputs.iter().map(|i| i.name.to_string()).collect();
        if ns == 1 {
            // One symbol: its columns are the matrix (copied once, no NaN fill first).
            let inp = &inputs[0];
            let ohlcv = [inp.open, inp.high, inp.low, inp.close, inp.volume]
                .map(|col| Values::from(copy_to_vec(col)));
            let extra = inp
                .extra
                .iter()
                .map(|(name, col)| Column {
                    name: (*name).to_string(),
                    values: copy_to_vec(col),
                })
                .collect();
            return Ok(Self::from_parts(symbols, ts.into(), ohlcv, extra));
        }
        let cells = ts.len() * ns;
        let mut fields: [Vec<f64>; 5] = std::array::from_fn(|_| vec![f64::NAN; cells]);
        let mut extra: Vec<Column> = extra_names
            .iter()
            .map(|n| Column {
                name: (*n).to_string(),
                values: vec![f64::NAN; cells],
            })
            .collect();
        for (s, inp) in inputs.iter().enumerate() {
            // Both time lists are sorted: walk them together.
            let mut t = 0;
            for (i, &x) in inp.ts.iter().enumerate() {
                while ts[t] < x {
                    t += 1;
                }
                let k = t * ns + s;
                for (f, col) in fields
                    .iter_mut()
                    .zip([inp.open, inp.high, inp.low, inp.close, inp.volume])
                {
                    f[k] = col[i];
                }
                for (name, col) in inp.extra {
                    if let Some(c) = extra.iter_mut().find(|c| c.name == *name) {
                        c.values[k] = col[i];
                    }
                }
            }
        }
        Ok(Self::from_parts(
            symbols,
            ts.into(),
            fields.map(Values::from),
            extra,
        ))
    }

    fn from_parts(
        symbols: Vec<String>,
        ts: Values<i64>,
        ohlcv: [Values<f64>; 5],
        extra: Vec<Column>,
    ) -> Self {
        let [open, high, low, close, volume] = ohlcv;
        Self {
            ts,
            open,
            high,
            low,
            close,
            volume,
            extra,
            symbols,
        }
    }

    /// Data over columns that are already aligned (time x symbols, row-major, NaN where a
    /// symbol has no bar; `ohlcv` in [`FIELDS`] order), kept as given (shared memory is read
    /// in place, not copied) and validated as the loops will read them: errors name the bar
    /// and the symbol.
    pub fn from_aligned(
        symbols: Vec<String>,
        ts: Values<i64>,
        ohlcv: [Values<f64>; 5],
        extra: Vec<Column>,
    ) -> Result<Self> {
        unique_symbols(symbols.iter().map(String::as_str))?;
        let [open, high, low, close, volume] = &ohlcv;
        Bars::new(&ts, open, high, low, close, volume, symbols.len())?;
        let cells = ts.len() * symbols.len();
        for c in &extra {
            if c.values.len() != cells {
                return Err(EngineError::data(format!(
                    "extra column {} has {} values, expected {} bars x {} symbols = {cells}",
                    c.name,
                    c.values.len(),
                    ts.len(),
                    symbols.len()
                )));
            }
        }
        Ok(Self::from_parts(symbols, ts, ohlcv, extra))
    }

    /// The borrowed view the loops read (no validation: it happened when this was built).
    pub fn bars(&self) -> Bars<'_> {
        Bars {
            ts: &self.ts,
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            volume: &self.volume,
            n_bars: self.ts.len(),
            n_symbols: self.symbols.len(),
            extra: &self.extra,
        }
    }
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }
    pub fn ts(&self) -> &[i64] {
        &self.ts
    }
    pub fn n_bars(&self) -> usize {
        self.ts.len()
    }
    pub fn n_symbols(&self) -> usize {
        self.symbols.len()
    }
    /// A price/volume field by name, or an extra column.
    pub fn field(&self, name: &str) -> Option<&[f64]> {
        Some(match name {
            "open" => &self.open,
            "high" => &self.high,
            "low" => &self.low,
            "close" => &self.close,
            "volume" => &self.volume,
            _ => {
                return self
                    .extra
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| c.values.as_slice())
            }
        })
    }
    /// Field `f` of [`FIELDS`] (open, high, low, close, volume) by position.
    #[inline]
    pub fn field_at(&self, f: usize) -> &[f64] {
        match f {
            0 => &self.open,
            1 => &self.high,
            2 => &self.low,
            3 => &self.close,
            _ => &self.volume,
        }
    }
    pub fn extra_names(&self) -> impl Iterator<Item = &str> {
        self.extra.iter().map(|c| c.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(name: &'a str, ts: &'a [i64], c: &'a [f64], v: &'a [f64]) -> SymbolInput<'a> {
        SymbolInput {
            name,
            label: name,
            ts,
            open: c,
            high: c,
            low: c,
            close: c,
            volume: v,
            rows: None,
            extra: &[],
        }
    }

    #[test]
    fn aligns_on_the_union_of_times() {
        let (ta, ca) = ([1, 2, 4], [10.0, 11.0, 12.0]);
        let (tb, cb) = ([2, 3], [20.0, 21.0]);
        let v = [1.0; 3];
        let d = BarData::from_symbols(&[input("A", &ta, &ca, &v), input("B", &tb, &cb, &v[..2])])
            .unwrap();
        assert_eq!(d.ts(), &[1, 2, 3, 4]);
        let c = d.field("close").unwrap();
        assert_eq!(c[0], 10.0);
        assert!(c[1].is_nan());
        assert_eq!((c[2], c[3]), (11.0, 20.0));
        assert!(c[4].is_nan() && c[7].is_nan());
        assert_eq!((c[5], c[6]), (21.0, 12.0));
        let b = d.bars();
        assert!(b.has_bar(0, 0) && !b.has_bar(0, 1));
    }

    #[test]
    fn errors_name_symbol_row_and_column() {
        let ts = [1, 2, 3];
        let c = [10.0, f64::NAN, 12.0];
        let v = [1.0; 3];
        let e = BarData::from_symbols(&[input("AAA", &ts, &c, &v)]).unwrap_err();
        assert!(
            e.message
                .contains("column 'open' must hold finite prices > 0; row 1"),
            "{}",
            e.message
        );
        assert_eq!(e.field("symbol"), Some("AAA"));
        assert_eq!(e.field("row"), Some("1"));
        assert_eq!(e.field("column"), Some("open"));
        let rows = [7, 9, 11];
        let mut inp = input("AAA", &[1, 3, 2], &[1.0; 3], &v);
        inp.rows = Some(&rows);
        let e = BarData::from_symbols(&[inp]).unwrap_err();
        assert!(
            e.message.contains("unsorted timestamps at row 11"),
            "{}",
            e.message
        );
    }

    #[test]
    fn extra_columns_follow_the_alignment() {
        let v = [1.0; 2];
        let pre = [9.0, 10.0];
        let extra = [("pre_close", &pre[..])];
        let mut a = input("A", &[1, 2], &[10.0, 11.0], &v);
        a.extra = &extra;
        let b = input("B", &[2], &[5.0], &v[..1]);
        let d = BarData::from_symbols(&[a, b]).unwrap();
        let p = d.bars().extra("pre_close").unwrap();
        assert_eq!((p[0], p[2]), (9.0, 10.0));
        assert!(p[1].is_nan() && p[3].is_nan());
    }

    /// Memory held elsewhere, as a Python binding shares it.
    struct Held(Vec<f64>);
    impl SharedValues<f64> for Held {
        fn values(&self) -> &[f64] {
            &self.0
        }
    }

    #[test]
    fn aligned_columns_are_kept_as_given_and_validated() {
        let v = [1.0; 3];
        let d = BarData::from_symbols(&[
            input("A", &[1, 2, 4], &[10.0, 11.0, 12.0], &v),
            input("B", &[2, 3], &[20.0, 21.0], &v[..2]),
        ])
        .unwrap();
        let shared = |f: &str| -> Values<f64> {
            Values::Shared(Arc::new(Held(d.field(f).unwrap().to_vec())))
        };
        let ohlcv = || FIELDS.map(shared);
        let names = || vec!["A".to_string(), "B".to_string()];
        let again =
            BarData::from_aligned(names(), d.ts().to_vec().into(), ohlcv(), vec![]).unwrap();
        let bits = |x: &BarData, f: &str| -> Vec<u64> {
            x.field(f).unwrap().iter().map(|v| v.to_bits()).collect()
        };
        assert_eq!((again.ts(), again.symbols()), (d.ts(), d.symbols()));
        for f in FIELDS {
            assert_eq!(bits(&again, f), bits(&d, f), "{f}");
        }
        let close = again.field("close").unwrap().as_ptr();
        assert_eq!(again.clone().field("close").unwrap().as_ptr(), close); // shared, not copied
        let e = BarData::from_aligned(names(), vec![1, 3, 2, 4].into(), ohlcv(), vec![]);
        assert!(e.unwrap_err().message.contains("unsorted timestamps"));
        let twice = vec!["A".to_string(), "A".to_string()];
        let e = BarData::from_aligned(twice, d.ts().to_vec().into(), ohlcv(), vec![]);
        assert_eq!(e.unwrap_err().field("symbol"), Some("A"));
        let short = Column {
            name: "flag".into(),
            values: vec![0.0; 3],
        };
        let e = BarData::from_aligned(names(), d.ts().to_vec().into(), ohlcv(), vec![short]);
        assert!(e
            .unwrap_err()
            .message
            .contains("extra column flag has 3 values"));
        let mut bad = ohlcv();
        bad[3] = Values::Owned(vec![10.0, f64::NAN, 11.0, 20.0, -1.0, 21.0, 12.0, f64::NAN]);
        let e = BarData::from_aligned(names(), d.ts().to_vec().into(), bad, vec![]);
        assert!(e.is_err());
    }

    #[test]
    fn python_style_numbers() {
        assert_eq!(num(f64::NAN), "nan");
        assert_eq!(num(-1.0), "-1.0");
        assert_eq!(num(1e300), "1e+300");
        assert_eq!(num(2.5), "2.5");
    }
}
