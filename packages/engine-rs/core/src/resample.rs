//! Coarser bars built from the run's bars (weekly from daily, hourly from minutes, bars of
//! every N bars), with the fine bar from which each coarse bar may be seen.
//!
//! Buckets are read on the run's trading-day clock: UTC shifted by `day_offset_ns`, as DAY
//! orders use it. A time rule's bucket is the half-open interval `[start, end)` of that
//! clock; a fine bar stamped `t` belongs to the bucket holding `t`.
//!
//! Visibility (the only rule; it uses nothing after the fine bar it is asked about): a time
//! bucket is complete at the first fine bar `i` (a row of the run's time index, whichever
//! symbol it belongs to) whose close time `ts[i] + bar_length` is at or past the bucket's
//! end. With `bar_length = 0` a fine bar is an instant (ticks), so the bucket shows from the
//! first row stamped at or after its end. A bucket of `every N bars` is complete at its N-th
//! bar of its symbol. A bucket that never becomes complete within the data (the final,
//! possibly partial one) is not a bar: the data cannot tell whether more of its bars would
//! have come, and showing it would pass a partial bar off as a finished one.

use crate::data::Bars;
use crate::error::{EngineError, Result};
use crate::time::{civil_from_days, NANOS_PER_DAY};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// How fine bars are grouped into coarse ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Fixed spans of the trading-day clock, anchored at its epoch (`"1min"`, `"4h"`, `"1D"`).
    Span(i64),
    /// Weeks ending on `end_weekday` (0 = Monday ... 6 = Sunday), like pandas' `W-SUN`.
    Week { end_weekday: u32 },
    /// `n` calendar months, anchored at January 1970 (so 3 = calendar quarters).
    Months(u32),
    /// Every `n` bars of a symbol (its own bars; rows where it has none do not count).
    Bars(usize),
}

const WEEKDAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

impl Rule {
    /// Parse a pandas-style rule: `<n><unit>` with unit `s`, `min`, `h`, `D`, `W` (= `W-SUN`)
    /// or `W-MON`...`W-SUN` (n = 1 only), `M`/`ME` (months), or `<n>bars`.
    pub fn parse(text: &str) -> Result<Rule> {
        let bad = |why: &str| {
            EngineError::config(format!(
                "unknown timeframe rule {text:?}: {why}; expected e.g. \"30s\", \"5min\", \"1h\", \
                 \"4h\", \"1D\", \"1W\" (week ending Sunday), \"W-FRI\", \"1M\" (month), \
                 \"3M\" or \"10bars\""
            ))
            .with_field("parameter", "rule")
            .with_field("rule", text)
        };
        let s = text.trim();
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = s.split_at(digits);
        let n: i64 = if num.is_empty() {
            1
        } else {
            num.parse().map_err(|_| bad("the count is too large"))?
        };
        if n < 1 {
            return Err(bad("the count must be at least 1"));
        }
        let span = |unit_ns: i64| {
            n.checked_mul(unit_ns)
                .map(Rule::Span)
                .ok_or_else(|| bad("the span is too long"))
        };
        match unit {
            "s" | "S" => span(NANOS_PER_SECOND),
            "min" | "T" => span(60 * NANOS_PER_SECOND),
            "h" | "H" => span(3_600 * NANOS_PER_SECOND),
            "D" | "d" => span(NANOS_PER_DAY),
            "M" | "ME" => u32::try_from(n)
                .map(Rule::Months)
                .map_err(|_| bad("the count is too large")),
            "bars" | "bar" => usize::try_from(n)
                .map(Rule::Bars)
                .map_err(|_| bad("the count is too large")),
            "W" if n == 1 => Ok(Rule::Week { end_weekday: 6 }),
            w if w.starts_with("W-") => {
                if n != 1 {
                    return Err(bad("weekly rules take no count"));
                }
                WEEKDAYS
                    .iter()
                    .position(|d| *d == &w[2..])
                    .map(|d| Rule::Week {
                        end_weekday: d as u32,
                    })
                    .ok_or_else(|| bad("the week's end day must be MON..SUN"))
            }
            "W" => Err(bad("weekly rules take no count")),
            "" => Err(bad("no unit")),
            _ => Err(bad("unknown unit")),
        }
    }

    /// The shortest possible bucket, for the check that a rule is coarser than the data.
    fn min_span(self) -> Option<i64> {
        match self {
            Rule::Span(d) => Some(d),
            Rule::Week { .. } => Some(7 * NANOS_PER_DAY),
            Rule::Months(n) => Some(i64::from(n).saturating_mul(28 * NANOS_PER_DAY)),
            Rule::Bars(_) => None,
        }
    }

    /// (bucket key, bucket start, bucket end) of a time on the shifted clock.
    fn bucket(self, clock: i64) -> (i64, i64, i64) {
        match self {
            Rule::Span(d) => {
                let k = clock.div_euclid(d);
                (k, k * d, (k + 1) * d)
            }
            Rule::Week { end_weekday } => {
                // Day 0 (1970-01-01) is a Thursday (weekday 3); weeks start the day after
                // their end day.
                let start_wd = i64::from((end_weekday + 1) % 7);
                let day = clock.div_euclid(NANOS_PER_DAY);
                let k = (day + 3 - start_wd).div_euclid(7);
                let first = k * 7 - 3 + start_wd;
                (k, first * NANOS_PER_DAY, (first + 7) * NANOS_PER_DAY)
            }
            Rule::Months(n) => {
                let (y, m, _) = civil_from_days(clock.div_euclid(NANOS_PER_DAY));
                let month = (y - 1970) * 12 + i64::from(m) - 1;
                let k = month.div_euclid(i64::from(n));
                let at = |mi: i64| days_from_month_index(mi) * NANOS_PER_DAY;
                (k, at(k * i64::from(n)), at((k + 1) * i64::from(n)))
            }
            Rule::Bars(_) => unreachable!("bar-count rules have no time buckets"),
        }
    }
}

/// Day number of the first day of month `mi` (months since January 1970); Howard Hinnant's
/// days-from-civil algorithm.
fn days_from_month_index(mi: i64) -> i64 {
    let y0 = 1970 + mi.div_euclid(12);
    let m = mi.rem_euclid(12) + 1;
    let y = if m <= 2 { y0 - 1 } else { y0 };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One symbol's completed coarse bars, in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoarseSeries {
    /// Bucket start (UTC ns); for `every N bars`, the time of the bucket's first bar.
    pub start: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    /// Fine row of the bucket's first and last bar.
    pub first: Vec<usize>,
    pub last: Vec<usize>,
    /// Fine row from which the coarse bar is visible (its completion).
    pub visible_from: Vec<usize>,
    /// Per fine row t: how many coarse bars are visible at t (`visible_from <= t`).
    pub counts: Vec<u32>,
}

impl CoarseSeries {
    pub fn len(&self) -> usize {
        self.start.len()
    }
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }
    /// A coarse field by name (`open` ... `volume`).
    pub fn field(&self, name: &str) -> Option<&[f64]> {
        Some(match name {
            "open" => &self.open,
            "high" => &self.high,
            "low" => &self.low,
            "close" => &self.close,
            "volume" => &self.volume,
            _ => return None,
        })
    }
}

/// Group the bars of every symbol by `rule`. `bar_length_ns` (>= 0) is how long one fine bar
/// lasts after its stamp (see the module docs); `day_offset_ns` shifts UTC to the trading-day
/// clock. Errors name the rule when it is not coarser than the data.
pub fn resample(
    bars: &Bars<'_>,
    rule: Rule,
    rule_text: &str,
    day_offset_ns: i64,
    bar_length_ns: i64,
) -> Result<Vec<CoarseSeries>> {
    if bar_length_ns < 0 {
        return Err(EngineError::config(format!(
            "bar_length must be >= 0, got {bar_length_ns} ns"
        ))
        .with_field("parameter", "bar_length"));
    }
    let ts = bars.ts;
    if let Rule::Bars(n) = rule {
        if n < 2 {
            return Err(not_coarser(
                rule_text,
                "a bucket of one bar is the bar itself",
            ));
        }
    }
    if let Some(span) = rule.min_span() {
        if let Some(w) = ts.windows(2).map(|w| w[1] - w[0]).min() {
            if w >= span {
                return Err(not_coarser(
                    rule_text,
                    &format!(
                        "the data's bars are {} apart, so every bucket holds one bar at most",
                        human(w)
                    ),
                ));
            }
        }
    }
    Ok((0..bars.n_symbols)
        .map(|s| match rule {
            Rule::Bars(n) => by_count(bars, s, n),
            _ => by_time(bars, s, rule, day_offset_ns, bar_length_ns),
        })
        .collect())
}

fn not_coarser(rule_text: &str, why: &str) -> EngineError {
    EngineError::config(format!(
        "timeframe rule {rule_text:?} is not coarser than the data: {why}"
    ))
    .with_field("parameter", "rule")
    .with_field("rule", rule_text)
}

fn human(ns: i64) -> String {
    let units = [
        (NANOS_PER_DAY, "day"),
        (3_600 * NANOS_PER_SECOND, "hour"),
        (60 * NANOS_PER_SECOND, "minute"),
        (NANOS_PER_SECOND, "second"),
    ];
    for (u, name) in units {
        if ns >= u && ns % u == 0 {
            let k = ns / u;
            return format!("{k} {name}{}", if k == 1 { "" } else { "s" });
        }
    }
    format!("{ns} ns")
}

/// Accumulates one bucket's bars.
struct Acc {
    start: i64,
    end: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    first: usize,
    last: usize,
    n: usize,
}

impl Acc {
    fn new(start: i64, end: i64, bars: &Bars<'_>, t: usize, s: usize) -> Self {
        let k = bars.idx(t, s);
        Self {
            start,
            end,
            open: bars.open[k],
            high: bars.high[k],
            low: bars.low[k],
            close: bars.close[k],
            volume: bars.volume[k],
            first: t,
            last: t,
            n: 1,
        }
    }
    fn add(&mut self, bars: &Bars<'_>, t: usize, s: usize) {
        let k = bars.idx(t, s);
        self.high = self.high.max(bars.high[k]);
        self.low = self.low.min(bars.low[k]);
        self.close = bars.close[k];
        self.volume += bars.volume[k];
        self.last = t;
        self.n += 1;
    }
    fn push(&self, out: &mut CoarseSeries, visible_from: usize) {
        out.start.push(self.start);
        out.open.push(self.open);
        out.high.push(self.high);
        out.low.push(self.low);
        out.close.push(self.close);
        out.volume.push(self.volume);
        out.first.push(self.first);
        out.last.push(self.last);
        out.visible_from.push(visible_from);
    }
}

fn by_time(bars: &Bars<'_>, s: usize, rule: Rule, offset: i64, bar_length: i64) -> CoarseSeries {
    let ts = bars.ts;
    let mut out = CoarseSeries::default();
    let mut acc: Option<Acc> = None;
    for t in 0..bars.n_bars {
        if !bars.has_bar(t, s) {
            continue;
        }
        // Inside the open bucket (its UTC bounds): no calendar arithmetic needed.
        match &mut acc {
            Some(a) if ts[t] >= a.start && ts[t] < a.end => a.add(bars, t, s),
            _ => {
                if let Some(done) = acc.take() {
                    finish_time(&done, ts, bar_length, &mut out);
                }
                let (_, start, end) = rule.bucket(ts[t].saturating_add(offset));
                acc = Some(Acc::new(start - offset, end - offset, bars, t, s));
            }
        }
    }
    if let Some(done) = acc {
        finish_time(&done, ts, bar_length, &mut out);
    }
    out.counts = counts(&out.visible_from, bars.n_bars);
    out
}

/// Record a time bucket if some fine row completes it: the first row, from its last bar on
/// (a bar cannot complete the bucket before it), whose close time reaches the bucket's end.
/// Rows of other symbols count too: the clock is the run's, not the symbol's.
fn finish_time(a: &Acc, ts: &[i64], bar_length: i64, out: &mut CoarseSeries) {
    let from = a.last;
    // ts is strictly increasing: binary search for the first row with ts + L >= end.
    let rest = &ts[from..];
    let k = rest.partition_point(|&x| x.saturating_add(bar_length) < a.end);
    if k < rest.len() {
        a.push(out, from + k);
    }
}

fn by_count(bars: &Bars<'_>, s: usize, n: usize) -> CoarseSeries {
    let mut out = CoarseSeries::default();
    let mut acc: Option<Acc> = None;
    for t in 0..bars.n_bars {
        if !bars.has_bar(t, s) {
            continue;
        }
        match &mut acc {
            Some(a) => a.add(bars, t, s),
            None => acc = Some(Acc::new(bars.ts[t], bars.ts[t], bars, t, s)),
        }
        if let Some(a) = acc.take_if(|a| a.n == n) {
            a.push(&mut out, t);
        }
    }
    out.counts = counts(&out.visible_from, bars.n_bars);
    out
}

fn counts(visible_from: &[usize], n_bars: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(n_bars);
    let mut k = 0usize;
    for t in 0..n_bars {
        while k < visible_from.len() && visible_from[k] <= t {
            k += 1;
        }
        out.push(u32::try_from(k).unwrap_or(u32::MAX));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600 * NANOS_PER_SECOND;

    fn bars_of<'a>(ts: &'a [i64], c: &'a [f64], v: &'a [f64]) -> Bars<'a> {
        Bars::new(ts, c, c, c, c, v, 1).expect("valid bars")
    }

    #[test]
    fn parses_rules_and_names_bad_ones() {
        assert_eq!(Rule::parse("4h").unwrap(), Rule::Span(4 * H));
        assert_eq!(Rule::parse("1D").unwrap(), Rule::Span(NANOS_PER_DAY));
        assert_eq!(Rule::parse("W").unwrap(), Rule::Week { end_weekday: 6 });
        assert_eq!(Rule::parse("W-FRI").unwrap(), Rule::Week { end_weekday: 4 });
        assert_eq!(Rule::parse("3M").unwrap(), Rule::Months(3));
        assert_eq!(Rule::parse("10bars").unwrap(), Rule::Bars(10));
        for bad in ["", "0h", "1x", "2W", "W-XYZ", "h1", "99999999999999999999h"] {
            let e = Rule::parse(bad).unwrap_err();
            assert_eq!(e.field("rule"), Some(bad), "{bad}");
            assert!(e.message.contains(&format!("{bad:?}")), "{}", e.message);
        }
    }

    #[test]
    fn week_and_month_buckets_follow_the_calendar() {
        // 2020-01-06 is a Monday (day 18267); W-SUN weeks run Monday..Sunday.
        let monday = 18_267 * NANOS_PER_DAY;
        let (_, start, end) = Rule::Week { end_weekday: 6 }.bucket(monday + 5 * H);
        assert_eq!((start, end), (monday, monday + 7 * NANOS_PER_DAY));
        let (_, start, _) = Rule::Week { end_weekday: 6 }.bucket(monday - 1);
        assert_eq!(start, monday - 7 * NANOS_PER_DAY);
        // 2020-02-15 falls in February 2020: 2020-02-01 (day 18293) .. 2020-03-01 (18322).
        let (_, start, end) = Rule::Months(1).bucket(18_307 * NANOS_PER_DAY);
        assert_eq!(
            (start, end),
            (18_293 * NANOS_PER_DAY, 18_322 * NANOS_PER_DAY)
        );
        assert_eq!(days_from_month_index(0), 0);
        assert_eq!(days_from_month_index(-1), -31);
    }

    #[test]
    fn hourly_from_half_hours_shows_at_the_end_and_drops_the_partial_last() {
        // 00:00 00:30 01:00 01:30 02:00 (half-hour bars); 2h buckets.
        let ts: Vec<i64> = (0..5).map(|k| k * H / 2).collect();
        let c = [1.0, 3.0, 2.0, 5.0, 4.0];
        let v = [1.0; 5];
        let b = bars_of(&ts, &c, &v);
        let instant = resample(&b, Rule::Span(H), "1h", 0, 0).unwrap();
        let s = &instant[0];
        assert_eq!(s.close, vec![3.0, 5.0]); // the 02:00 bucket never completes
        assert_eq!(s.high, vec![3.0, 5.0]);
        assert_eq!(s.low, vec![1.0, 2.0]);
        assert_eq!(s.volume, vec![2.0, 2.0]);
        assert_eq!(s.visible_from, vec![2, 4]);
        assert_eq!(s.counts, vec![0, 0, 1, 1, 2]);
        // Bars lasting 30 minutes close their bucket at their own close.
        let lasting = resample(&b, Rule::Span(H), "1h", 0, H / 2).unwrap();
        assert_eq!(lasting[0].visible_from, vec![1, 3]);
    }

    #[test]
    fn every_n_bars_skips_missing_rows_and_rejects_finer_rules() {
        // Two symbols; the second has no bar at rows 1 and 2.
        let ts: Vec<i64> = (0..5).map(|k| k * H).collect();
        let nan = f64::NAN;
        let c = [1.0, 1.0, 2.0, nan, 3.0, nan, 4.0, 5.0, 5.0, 6.0];
        let v = [1.0; 10];
        let b = Bars::new(&ts, &c, &c, &c, &c, &v, 2).unwrap();
        let out = resample(&b, Rule::Bars(2), "2bars", 0, 0).unwrap();
        assert_eq!(out[0].close, vec![2.0, 4.0]);
        assert_eq!(out[0].visible_from, vec![1, 3]);
        assert_eq!(out[1].close, vec![5.0]);
        assert_eq!(out[1].first, vec![0]);
        assert_eq!(out[1].visible_from, vec![3]);
        let e = resample(&b, Rule::Span(H), "1h", 0, 0).unwrap_err();
        assert!(e.message.contains("\"1h\" is not coarser"), "{}", e.message);
        assert!(e.message.contains("1 hour apart"), "{}", e.message);
        assert!(resample(&b, Rule::Bars(1), "1bars", 0, 0).is_err());
    }

    #[test]
    fn the_day_offset_moves_day_boundaries() {
        // Bars at 22:00 and 23:00 UTC on day 0 and 01:00 on day 1; with a +2h clock the
        // 22:00 bar is on day 1 already.
        let ts = [22 * H, 23 * H, 25 * H, 50 * H];
        let c = [1.0, 2.0, 3.0, 4.0];
        let v = [1.0; 4];
        let b = bars_of(&ts, &c, &v);
        let utc = resample(&b, Rule::Span(NANOS_PER_DAY), "1D", 0, 0).unwrap();
        assert_eq!(utc[0].close, vec![2.0, 3.0]);
        let shifted = resample(&b, Rule::Span(NANOS_PER_DAY), "1D", 2 * H, 0).unwrap();
        assert_eq!(shifted[0].close, vec![3.0]);
        assert_eq!(shifted[0].start, vec![22 * H]);
    }
}
