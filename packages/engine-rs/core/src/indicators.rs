//! Vectorized indicators over one price series.
//!
//! NaN marks "no bar" (e.g. a symbol not yet listed or suspended): each indicator is computed
//! over the bars that exist, in order, and NaN is returned where there is no bar. Warm-up
//! values are NaN. Conventions (tested against pandas in the Python suite):
//! - `sma(n)`: mean of the last n values (pandas `rolling(n).mean()`).
//! - `ema(n)`: alpha = 2/(n+1), seeded with the SMA of the first n values (first value at n-1).
//! - `rsi(n)`: Wilder's RSI; first average gain/loss is the mean of the first n changes, then
//!   Wilder smoothing (alpha = 1/n); first value at index n. 100 when there are no losses,
//!   50 when the series is flat.
//! - `atr(n)`: true range (TR[0] = high - low), first ATR at n-1 is the mean of TR[0..n],
//!   then Wilder smoothing.
//! - `bollinger(n, k)`: SMA ± k × population standard deviation (ddof = 0) of the window.
//!
//! Windowed means ([`RollingMean`], shared by `sma`, the EMA seed, the bands and the built-in
//! SMA cross) are exact for decimal prices, so that equal means compare equal (a touch of two
//! averages is no cross), and otherwise each window is summed afresh: no value leaves a
//! trace once it has left the window. A window longer than the series is all NaN.

use crate::error::{EngineError, Result};

fn check_window(name: &str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(EngineError::config(format!(
            "{name}: window must be >= 1, got 0"
        )));
    }
    Ok(())
}

/// Apply `f` to the non-NaN values of `x` and scatter the result back; NaN elsewhere.
fn over_present(x: &[f64], f: impl FnOnce(&[f64]) -> Result<Vec<f64>>) -> Result<Vec<f64>> {
    if !x.iter().any(|v| v.is_nan()) {
        return f(x);
    }
    let (idx, vals): (Vec<usize>, Vec<f64>) = x
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .map(|(i, v)| (i, *v))
        .unzip();
    let inner = f(&vals)?;
    let mut out = vec![f64::NAN; x.len()];
    for (i, v) in idx.into_iter().zip(inner) {
        out[i] = v;
    }
    Ok(out)
}

/// Most decimal places the exact path recognises (prices, including crypto, rarely need more).
const MAX_PLACES: usize = 8;
const POW10: [f64; MAX_PLACES + 1] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
/// Bound on a window sum (and its divisor) in the exact path: doubles hold integers exactly
/// up to 2^53, and the bit to spare absorbs the rounding of the bound checks themselves.
const EXACT_SUM: f64 = (1u64 << 52) as f64;
/// Bound on one scaled value: `round_int` is exact up to 2^51.
const EXACT_VALUE: f64 = (1u64 << 51) as f64;
/// Bound on a window sum in the float path, far from f64::MAX.
const FLOAT_SUM: f64 = 1.0715086071862673e301; // 2^1000

/// 1.5 * 2^52: for |x| <= 2^51, x + MAGIC lands in [2^52, 2^53), where doubles are spaced 1
/// apart, so it is MAGIC + (x rounded to an integer, ties to even), and the difference of two
/// such values is exact.
const MAGIC: f64 = 6755399441055744.0;

/// Round to the nearest integer for |x| <= 2^51 (two adds, where `round` would be a libm
/// call on baseline x86-64).
#[inline(always)]
fn round_int(x: f64) -> f64 {
    (x + MAGIC) - MAGIC
}

/// Whether `v` is the double nearest to a decimal with `k` places that `round_int` handles.
fn is_decimal(v: f64, k: usize) -> bool {
    let p = POW10[k];
    let x = v * p;
    x.abs() <= EXACT_VALUE && round_int(x) / p == v
}

/// A power of two `s` (<= 1) with `max_abs * s * n <= FLOAT_SUM`, so that no window sum of
/// values up to `max_abs` can overflow.
fn float_scale(max_abs: f64, n: usize) -> f64 {
    if max_abs * n as f64 <= FLOAT_SUM {
        return 1.0;
    }
    // max_abs < 2^e_max and n <= 2^e_n, so 2^-(e_max + e_n - 1000) is enough.
    let e_max = ((max_abs.to_bits() >> 52) & 0x7ff) as i64 - 1022;
    let e_n = i64::from(usize::BITS - (n - 1).leading_zeros());
    let e = (e_max + e_n - 1000).clamp(0, 1000);
    f64::from_bits(((1023 - e) as u64) << 52)
}

/// max for values that are never NaN, as one compare-and-select (`f64::max` also handles
/// NaN, which costs a few instructions more in a loop that does little else).
#[inline(always)]
fn larger(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// |v| if finite, else 0.
#[inline(always)]
fn finite_abs(v: f64) -> f64 {
    let a = v.abs();
    if a < f64::INFINITY {
        a
    } else {
        0.0
    }
}

/// What one pass over a series tells [`RollingMean`] about it, so that the arithmetic is
/// chosen once per series: how many values are present (non-NaN), the fewest decimal places
/// that hold every present value exactly (None if more than 8 are needed or a value is not
/// finite), and the largest finite magnitude. `sma` and the built-in SMA cross scan the same
/// values, so they choose the same arithmetic and produce bit-identical averages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesScan {
    pub present: usize,
    pub places: Option<usize>,
    pub max_abs: f64,
}

impl SeriesScan {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut it = values.into_iter();
        let (mut present, mut k, mut decimal) = (0usize, 0usize, true);
        let mut max_abs = [0.0f64; 4];
        // While every value so far is a decimal (its test, a division, dominates here). A
        // decimal with k places is also one with more, so k only grows.
        for v in it.by_ref() {
            if v.is_nan() {
                continue;
            }
            present += 1;
            max_abs[0] = larger(max_abs[0], finite_abs(v));
            if !is_decimal(v, k) {
                match (k + 1..=MAX_PLACES).find(|&j| is_decimal(v, j)) {
                    Some(j) => k = j,
                    None => {
                        decimal = false;
                        break;
                    }
                }
            }
        }
        // Then only the count and the largest finite magnitude, in independent lanes so that
        // the loop is not one long chain of comparisons.
        'tail: loop {
            for m in &mut max_abs {
                let Some(v) = it.next() else {
                    break 'tail;
                };
                present += usize::from(!v.is_nan());
                *m = larger(*m, finite_abs(v));
            }
        }
        Self {
            present,
            places: decimal.then_some(k),
            max_abs: max_abs.into_iter().fold(0.0, larger),
        }
    }

    /// The scan of column `col` of a row-major table with `n_cols` columns.
    pub fn of_column(table: &[f64], col: usize, n_cols: usize) -> Self {
        if n_cols <= 1 {
            Self::of(table.iter().copied())
        } else {
            Self::of(table.iter().skip(col).step_by(n_cols).copied())
        }
    }
}

/// The mean of the last `n` values pushed, one value at a time: NaN until `n` values exist.
/// The arithmetic is chosen from a [`SeriesScan`] of the values that will be pushed:
/// - decimals (`ExactSum`): a running sum of integers, exact, so that two windows whose
///   exact means are equal give the same double;
/// - anything else (`BlockSum`): each window summed afresh in two pieces, so no value leaves
///   a trace (rounding drift, a huge value, an infinity) once it has left the window.
///
/// A value the scan did not foresee (not the decimal it promised) switches to the second.
/// Memory grows with the values pushed, so a window longer than the series costs no more than
/// the series. `sma` is built on it, so a driver that averages bar by bar gets bit-identical
/// values.
#[derive(Clone, Debug)]
pub struct RollingMean {
    n: usize,
    state: State,
}

#[derive(Clone, Debug)]
enum State {
    /// Values checked to be the decimals the scan promised (see `ExactSum::holds`).
    Exact(ExactSum),
    /// Values known to be those of the scan ([`RollingMean::for_scanned`]).
    ExactScanned(ExactSum),
    Block(BlockSum),
    /// A block sum of values scaled by a power of two other than 1.
    Scaled(BlockSum),
}

/// Running sum of each value times 10^places, an integer: every window sum stays below 2^52,
/// so additions and subtractions are exact and the mean is one correctly rounded division of
/// exact integers. One add per value on the dependency chain.
#[derive(Clone, Debug)]
struct ExactSum {
    /// MAGIC + each value's integer (see `MAGIC`).
    ring: Vec<f64>,
    /// Where the next value goes: `ring.len()` while filling, then the oldest value's slot.
    slot: usize,
    sum: f64,
    /// 10^places.
    scale: f64,
    /// Largest |scaled value| for which n of them sum below EXACT_SUM.
    limit: f64,
    /// n * 10^places, exact.
    divisor: f64,
}

/// Sliding-window sum without subtraction (the "two stacks" scheme): the values come in
/// blocks of n. When a block completes, its suffix sums are computed afresh, right to left;
/// the window ending at position j of the next block is then the previous block's sum over
/// positions after j plus the running sum of the current block up to j. Each window is thus a
/// fresh sum (error like that of summing the window directly, nothing accumulates), at one
/// add per value plus one per value at block ends.
#[derive(Clone, Debug)]
struct BlockSum {
    /// Per position j: the current block's (scaled) value there, and the previous block's sum
    /// over positions j + 1..n (0 during the first block, which grows the vector).
    slots: Vec<(f64, f64)>,
    /// How many values of the current block have come.
    j: usize,
    /// Their sum, left to right.
    prefix: f64,
    /// A power of two (1 unless the values are so large that their sums could overflow)
    /// applied to each value, and its inverse applied to the mean; both exact.
    scale: f64,
    post: f64,
    /// n.
    divisor: f64,
}

impl RollingMean {
    /// A mean over windows of `n` of the values that `scan` describes. Each value pushed is
    /// checked against what the scan promised; one that does not fit switches to the block sum.
    pub fn new(n: usize, scan: &SeriesScan) -> Result<Self> {
        Self::build(n, scan, true)
    }

    /// As `new`, for a caller that pushes exactly the values `scan` was made from, in order
    /// (the crate's indicators and the built-in SMA cross): the per-value check is skipped
    /// (it is debug-asserted), which is most of the cost of the exact sum.
    pub(crate) fn for_scanned(n: usize, scan: &SeriesScan) -> Result<Self> {
        Self::build(n, scan, false)
    }

    fn build(n: usize, scan: &SeriesScan, checked: bool) -> Result<Self> {
        if n == 0 {
            return Err(EngineError::config("window must be >= 1, got 0"));
        }
        let nf = n as f64;
        let cap = n.min(scan.present);
        if let Some(k) = scan.places {
            let p = POW10[k];
            let limit = (EXACT_SUM / nf).floor().min(EXACT_VALUE);
            if round_int(scan.max_abs * p) <= limit && nf * p <= EXACT_SUM {
                let sum = ExactSum {
                    ring: Vec::with_capacity(cap),
                    slot: 0,
                    sum: 0.0,
                    scale: p,
                    limit,
                    divisor: nf * p,
                };
                let state = if checked {
                    State::Exact(sum)
                } else {
                    State::ExactScanned(sum)
                };
                return Ok(Self { n, state });
            }
        }
        Ok(Self {
            n,
            state: BlockSum::new(n, cap, float_scale(scan.max_abs, n)).into_state(),
        })
    }

    #[inline(always)]
    pub fn push(&mut self, v: f64) -> f64 {
        let n = self.n;
        // The two common states inline, tested in turn (a jump table costs more here).
        if let State::Block(b) = &mut self.state {
            return b.push::<false>(n, v);
        }
        if let State::ExactScanned(e) = &mut self.state {
            if let Some(mean) = e.push::<false>(n, v) {
                return mean;
            }
        }
        self.push_other(v)
    }

    #[inline(never)]
    fn push_other(&mut self, v: f64) -> f64 {
        let n = self.n;
        let mean = match &mut self.state {
            State::Exact(e) => e.push::<true>(n, v),
            State::ExactScanned(e) => e.push::<false>(n, v),
            State::Block(b) => Some(b.push::<false>(n, v)),
            State::Scaled(b) => Some(b.push::<true>(n, v)),
        };
        match mean {
            Some(mean) => mean,
            None => self.push_unforeseen(v),
        }
    }

    /// `xs.iter().map(|&v| self.push(v)).collect()`, bit for bit, with the loops over
    /// `xs` inside (through `push` every value would store and reload the running sum).
    pub fn push_all(&mut self, xs: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut out = vec![f64::NAN; xs.len()];
        let mut i = 0;
        while i < xs.len() {
            i += match &mut self.state {
                State::Exact(e) => e.push_all::<true>(n, &xs[i..], &mut out[i..]),
                State::ExactScanned(e) => e.push_all::<false>(n, &xs[i..], &mut out[i..]),
                State::Block(b) => b.push_all::<false>(n, &xs[i..], &mut out[i..]),
                State::Scaled(b) => b.push_all::<true>(n, &xs[i..], &mut out[i..]),
            };
            // A value the exact sum cannot hold stopped it.
            if i < xs.len() {
                out[i] = self.push(xs[i]);
                i += 1;
            }
        }
        out
    }

    /// Continue with a block sum over the same window, from the value that does not fit.
    #[cold]
    #[inline(never)]
    fn push_unforeseen(&mut self, v: f64) -> f64 {
        if let State::Exact(e) | State::ExactScanned(e) = &self.state {
            let (newer, older) = e.ring.split_at(e.slot);
            // m / 10^k is correctly rounded, so it gives back the double that was pushed.
            let window: Vec<f64> = older
                .iter()
                .chain(newer)
                .map(|b| (b - MAGIC) / e.scale)
                .collect();
            let max_abs = window
                .iter()
                .fold(finite_abs(v), |a, &b| larger(a, b.abs()));
            self.state = BlockSum::resume(self.n, &window, max_abs).into_state();
        }
        self.push(v)
    }
}

/// Whether `b = v * scale + MAGIC` holds v exactly as the integer m = b - MAGIC. A scanned
/// value v = fl(m / 10^k) puts v * 10^k within about 2^-52 |m| of m; this allows twice that
/// (so a value pushed without being scanned may be read as a decimal one or two ulps away) and
/// keeps |m| <= limit, which is what makes the sums exact. NaN and infinities fail.
#[inline(always)]
fn holds(v: f64, b: f64, scale: f64, limit: f64) -> bool {
    let m = b - MAGIC;
    m.abs() <= limit && (v * scale - m).abs() <= m.abs() * (2.0 * f64::EPSILON)
}

impl ExactSum {
    /// None if `v` is not a decimal that the exact sum can hold (only looked at if CHECKED).
    #[inline(always)]
    fn push<const CHECKED: bool>(&mut self, n: usize, v: f64) -> Option<f64> {
        let b = v * self.scale + MAGIC;
        let fits = || holds(v, b, self.scale, self.limit);
        if CHECKED && !fits() {
            return None;
        }
        debug_assert!(fits(), "{v} was not in the scan");
        if let Some(r) = self.ring.get_mut(self.slot) {
            let old = std::mem::replace(r, b);
            self.sum += b - old;
            self.slot = if self.slot + 1 == n { 0 } else { self.slot + 1 };
            return Some(self.sum / self.divisor);
        }
        self.ring.push(b);
        self.sum += b - MAGIC;
        let full = self.ring.len() == n;
        self.slot = if full { 0 } else { self.ring.len() };
        Some(if full {
            self.sum / self.divisor
        } else {
            f64::NAN
        })
    }

    /// `push` over `xs` while the values fit, in locals; how many were consumed.
    fn push_all<const CHECKED: bool>(&mut self, n: usize, xs: &[f64], out: &mut [f64]) -> usize {
        let mut done = 0;
        // Filling: value by value.
        while self.slot == self.ring.len() && done < xs.len() {
            match self.push::<CHECKED>(n, xs[done]) {
                Some(mean) => out[done] = mean,
                None => return done,
            }
            done += 1;
        }
        let (scale, limit, divisor) = (self.scale, self.limit, self.divisor);
        let (mut sum, mut slot) = (self.sum, self.slot);
        let ring = &mut self.ring[..];
        for (&v, o) in xs[done..].iter().zip(&mut out[done..]) {
            let b = v * scale + MAGIC;
            if CHECKED && !holds(v, b, scale, limit) {
                break;
            }
            debug_assert!(holds(v, b, scale, limit), "{v} was not in the scan");
            let old = std::mem::replace(&mut ring[slot], b);
            sum += b - old;
            slot = if slot + 1 == n { 0 } else { slot + 1 };
            *o = sum / divisor;
            done += 1;
        }
        (self.sum, self.slot) = (sum, slot);
        done
    }
}

impl BlockSum {
    fn into_state(self) -> State {
        if self.scale == 1.0 {
            State::Block(self)
        } else {
            State::Scaled(self)
        }
    }

    fn new(n: usize, cap: usize, scale: f64) -> Self {
        Self {
            slots: Vec::with_capacity(cap),
            j: 0,
            prefix: 0.0,
            scale,
            post: 1.0 / scale,
            divisor: n as f64,
        }
    }

    /// A block sum whose last values were `window` (oldest first, at most n of them).
    fn resume(n: usize, window: &[f64], max_abs: f64) -> Self {
        let mut b = Self::new(n, n, float_scale(max_abs, n));
        b.slots.extend(window.iter().map(|v| (v * b.scale, 0.0)));
        if b.slots.len() == n {
            b.close_block();
        } else {
            b.j = b.slots.len();
            b.prefix = b.slots.iter().fold(0.0, |a, x| a + x.0);
        }
        b
    }

    #[inline(always)]
    fn push<const SCALED: bool>(&mut self, n: usize, v: f64) -> f64 {
        let x = if SCALED { v * self.scale } else { v };
        let j = self.j;
        self.prefix += x;
        let w = if let Some(slot) = self.slots.get_mut(j) {
            slot.0 = x;
            slot.1 + self.prefix
        } else {
            // The first block: no window until it is complete.
            self.slots.push((x, 0.0));
            if j + 1 < n {
                self.j = j + 1;
                return f64::NAN;
            }
            0.0 + self.prefix
        };
        if j + 1 == n {
            self.close_block();
        } else {
            self.j = j + 1;
        }
        let mean = w / self.divisor;
        if SCALED {
            mean * self.post
        } else {
            mean
        }
    }

    /// `push` over `xs`, block by block with the running sum in a local; consumes all of `xs`.
    fn push_all<const SCALED: bool>(&mut self, n: usize, xs: &[f64], out: &mut [f64]) -> usize {
        let mut i = 0;
        while i < xs.len() && self.slots.len() < n {
            out[i] = self.push::<SCALED>(n, xs[i]);
            i += 1;
        }
        let (scale, post, nf) = (self.scale, self.post, self.divisor);
        while i < xs.len() {
            let j = self.j;
            let take = (n - j).min(xs.len() - i);
            let mut prefix = self.prefix;
            let dst = &mut out[i..i + take];
            for ((&v, o), slot) in xs[i..i + take].iter().zip(dst).zip(&mut self.slots[j..]) {
                let x = if SCALED { v * scale } else { v };
                slot.0 = x;
                prefix += x;
                let mean = (slot.1 + prefix) / nf;
                *o = if SCALED { mean * post } else { mean };
            }
            self.prefix = prefix;
            i += take;
            if j + take == n {
                self.close_block();
            } else {
                self.j = j + take;
            }
        }
        i
    }

    /// The current block is complete: its sums over later positions become the previous
    /// block's, computed right to left.
    #[inline(never)]
    fn close_block(&mut self) {
        let mut acc = 0.0;
        for slot in self.slots.iter_mut().rev() {
            slot.1 = acc;
            acc += slot.0;
        }
        self.prefix = 0.0;
        self.j = 0;
    }
}

fn sma_dense(x: &[f64], n: usize, scan: &SeriesScan) -> Result<Vec<f64>> {
    if n > scan.present {
        return Ok(vec![f64::NAN; x.len()]);
    }
    Ok(RollingMean::for_scanned(n, scan)?.push_all(x))
}

pub fn sma(x: &[f64], n: usize) -> Result<Vec<f64>> {
    check_window("sma", n)?;
    let scan = SeriesScan::of(x.iter().copied());
    over_present(x, |v| sma_dense(v, n, &scan))
}

pub fn ema(x: &[f64], n: usize) -> Result<Vec<f64>> {
    check_window("ema", n)?;
    let scan = SeriesScan::of(x.iter().copied());
    over_present(x, |v| {
        let mut out = vec![f64::NAN; v.len()];
        if v.len() < n {
            return Ok(out);
        }
        let alpha = 2.0 / (n as f64 + 1.0);
        // The seed is the SMA's first value, bit for bit.
        let mut seed = RollingMean::for_scanned(n, &scan)?;
        let mut e = f64::NAN;
        for &a in &v[..n] {
            e = seed.push(a);
        }
        out[n - 1] = e;
        for i in n..v.len() {
            e += alpha * (v[i] - e);
            out[i] = e;
        }
        Ok(out)
    })
}

fn rsi_value(gain: f64, loss: f64) -> f64 {
    if loss == 0.0 {
        if gain == 0.0 {
            50.0
        } else {
            100.0
        }
    } else {
        100.0 - 100.0 / (1.0 + gain / loss)
    }
}

pub fn rsi(x: &[f64], n: usize) -> Result<Vec<f64>> {
    check_window("rsi", n)?;
    over_present(x, |v| {
        let mut out = vec![f64::NAN; v.len()];
        if v.len() <= n {
            return Ok(out);
        }
        let (mut gain, mut loss) = (0.0, 0.0);
        for i in 1..=n {
            let d = v[i] - v[i - 1];
            if d > 0.0 {
                gain += d;
            } else {
                loss -= d;
            }
        }
        gain /= n as f64;
        loss /= n as f64;
        out[n] = rsi_value(gain, loss);
        let nf = n as f64;
        // Wilder smoothing as avg += (x - avg) / n: with avg, x >= 0 nothing can overflow,
        // where avg * (n - 1) can for huge averages and long windows.
        for i in n + 1..v.len() {
            let d = v[i] - v[i - 1];
            gain += (d.max(0.0) - gain) / nf;
            loss += ((-d).max(0.0) - loss) / nf;
            out[i] = rsi_value(gain, loss);
        }
        Ok(out)
    })
}

pub fn atr(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Result<Vec<f64>> {
    check_window("atr", n)?;
    if high.len() != low.len() || high.len() != close.len() {
        return Err(EngineError::data(format!(
            "atr: high, low and close must have the same length (got {}, {}, {})",
            high.len(),
            low.len(),
            close.len()
        )));
    }
    // Compute over bars where all three exist.
    let idx: Vec<usize> = (0..close.len())
        .filter(|&i| !(high[i].is_nan() || low[i].is_nan() || close[i].is_nan()))
        .collect();
    let mut out = vec![f64::NAN; close.len()];
    if idx.len() < n {
        return Ok(out);
    }
    let tr: Vec<f64> = idx
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let hl = high[i] - low[i];
            if j == 0 {
                hl
            } else {
                let pc = close[idx[j - 1]];
                hl.max((high[i] - pc).abs()).max((low[i] - pc).abs())
            }
        })
        .collect();
    let nf = n as f64;
    let mut a = tr[..n].iter().sum::<f64>() / nf;
    out[idx[n - 1]] = a;
    for j in n..tr.len() {
        a += (tr[j] - a) / nf; // Wilder smoothing without the overflow of a * (n - 1)
        out[idx[j]] = a;
    }
    Ok(out)
}

/// Population standard deviation of `w` around its mean `mean`. Squares of deviations beyond
/// ~1e154 overflow; then the deviations are taken at a power-of-two scale (exact), where the
/// squares fit, and the result is scaled back.
fn population_std(w: &[f64], mean: f64) -> f64 {
    if !mean.is_finite() {
        return f64::NAN;
    }
    let n = w.len() as f64;
    let ss: f64 = w.iter().map(|a| (a - mean) * (a - mean)).sum();
    if ss.is_finite() {
        return (ss / n).sqrt();
    }
    const DOWN: f64 = 2.409919865102884e-181; // 2^-600
    const UP: f64 = 4.149515568880993e180; // 2^600
    let ss: f64 = w
        .iter()
        .map(|a| {
            let d = a * DOWN - mean * DOWN;
            d * d
        })
        .sum();
    (ss / n).sqrt() * UP
}

/// Bollinger bands: (middle, upper, lower).
pub fn bollinger(x: &[f64], n: usize, k: f64) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    check_window("bollinger", n)?;
    if !k.is_finite() {
        return Err(EngineError::config(format!(
            "bollinger: k must be finite, got {k}"
        )));
    }
    let scan = SeriesScan::of(x.iter().copied());
    let mid = over_present(x, |v| sma_dense(v, n, &scan))?;
    // Two-pass variance per window around the SMA (exact to rounding, O(n * window), computed
    // once per run): each window is summed afresh, so a huge value leaves no trace once it has
    // left the window.
    let sd = over_present(x, |v| {
        let m = sma_dense(v, n, &scan)?;
        let mut out = vec![f64::NAN; v.len()];
        for i in (n - 1)..v.len() {
            out[i] = population_std(&v[i + 1 - n..=i], m[i]);
        }
        Ok(out)
    })?;
    let upper = mid.iter().zip(&sd).map(|(m, s)| m + k * s).collect();
    let lower = mid.iter().zip(&sd).map(|(m, s)| m - k * s).collect();
    Ok((mid, upper, lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(1.0)
    }

    #[test]
    fn sma_uses_exactly_n_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let s = sma(&x, 3).unwrap();
        assert!(s[0].is_nan() && s[1].is_nan());
        assert_eq!(&s[2..], &[2.0, 3.0, 4.0]);
    }

    #[test]
    fn sma_skips_missing_bars() {
        let x = [1.0, f64::NAN, 3.0, 5.0];
        let s = sma(&x, 2).unwrap();
        assert!(s[0].is_nan() && s[1].is_nan());
        assert_eq!(s[2], 2.0);
        assert_eq!(s[3], 4.0);
    }

    #[test]
    fn ema_is_seeded_with_sma() {
        let x = [2.0, 4.0, 6.0, 8.0];
        let e = ema(&x, 3).unwrap();
        assert_eq!(e[2], 4.0);
        assert!(close(e[3], 4.0 + 0.5 * (8.0 - 4.0)));
    }

    #[test]
    fn rsi_extremes() {
        let up: Vec<f64> = (0..20).map(|i| i as f64 + 1.0).collect();
        assert_eq!(rsi(&up, 14).unwrap()[19], 100.0);
        let flat = vec![3.0; 20];
        assert_eq!(rsi(&flat, 14).unwrap()[19], 50.0);
        let down: Vec<f64> = (0..20).map(|i| 30.0 - i as f64).collect();
        assert_eq!(rsi(&down, 14).unwrap()[19], 0.0);
    }

    #[test]
    fn atr_first_value_is_mean_true_range() {
        let h = [10.0, 11.0, 12.0];
        let l = [9.0, 10.0, 10.5];
        let c = [9.5, 10.5, 11.0];
        let a = atr(&h, &l, &c, 2).unwrap();
        // TR = [1.0, max(1, 1.5, 0.5) = 1.5, max(1.5, 1.5, 0) = 1.5]
        assert_eq!(a[1], 1.25);
        assert!(close(a[2], (1.25 + 1.5) / 2.0));
    }

    #[test]
    fn bollinger_uses_population_std() {
        let x = [1.0, 3.0];
        let (m, u, l) = bollinger(&x, 2, 2.0).unwrap();
        assert_eq!(m[1], 2.0);
        assert_eq!(u[1], 4.0);
        assert_eq!(l[1], 0.0);
    }

    #[test]
    fn zero_window_is_an_error() {
        assert!(sma(&[1.0], 0).is_err());
    }
}
