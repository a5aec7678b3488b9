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
fn over_present(x: &[f64], f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    if !x.iter().any(|v| v.is_nan()) {
        return f(x);
    }
    let (idx, vals): (Vec<usize>, Vec<f64>) = x
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .map(|(i, v)| (i, *v))
        .unzip();
    let inner = f(&vals);
    let mut out = vec![f64::NAN; x.len()];
    for (i, v) in idx.into_iter().zip(inner) {
        out[i] = v;
    }
    out
}

/// Values added between exact re-sums of a running window sum (see [`RollingMean`]).
const RESYNC: usize = 1024;

fn sma_dense(x: &[f64], n: usize) -> Vec<f64> {
    let mut m = RollingMean::new(n);
    x.iter().map(|&v| m.push(v)).collect()
}

/// The mean of the last `n` values pushed, one value at a time: NaN until `n` values exist.
/// A running sum (one add per value, no long dependency chain), re-summed exactly every
/// `RESYNC` values so rounding drift stays at the level of a fresh sum. `sma` is built on it,
/// so a driver that averages bar by bar gets bit-identical values.
#[derive(Clone, Debug)]
pub struct RollingMean {
    window: Vec<f64>,
    /// Where the next value goes (= count % n, kept without a division).
    slot: usize,
    count: usize,
    sum: f64,
}

impl RollingMean {
    pub fn new(n: usize) -> Self {
        assert!(n > 0, "window must be >= 1");
        Self {
            window: vec![0.0; n],
            slot: 0,
            count: 0,
            sum: -0.0,
        }
    }

    #[inline]
    pub fn push(&mut self, v: f64) -> f64 {
        let n = self.window.len();
        let (k, slot) = (self.count, self.slot);
        if k < n {
            self.sum += v;
        } else if k.is_multiple_of(RESYNC) {
            self.window[slot] = v;
            // Oldest to newest, as a fresh left-to-right sum of the window would add them.
            let (newer, older) = self.window.split_at(slot + 1);
            self.sum = older.iter().chain(newer).fold(-0.0, |a, b| a + b);
        } else {
            self.sum += v - self.window[slot];
        }
        self.window[slot] = v;
        self.count = k + 1;
        self.slot = if slot + 1 == n { 0 } else { slot + 1 };
        if k + 1 >= n {
            self.sum / n as f64
        } else {
            f64::NAN
        }
    }
}

pub fn sma(x: &[f64], n: usize) -> Result<Vec<f64>> {
    check_window("sma", n)?;
    Ok(over_present(x, |v| sma_dense(v, n)))
}

pub fn ema(x: &[f64], n: usize) -> Result<Vec<f64>> {
    check_window("ema", n)?;
    Ok(over_present(x, |v| {
        let mut out = vec![f64::NAN; v.len()];
        if v.len() < n {
            return out;
        }
        let alpha = 2.0 / (n as f64 + 1.0);
        let mut e = v[..n].iter().sum::<f64>() / n as f64;
        out[n - 1] = e;
        for i in n..v.len() {
            e += alpha * (v[i] - e);
            out[i] = e;
        }
        out
    }))
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
    Ok(over_present(x, |v| {
        let mut out = vec![f64::NAN; v.len()];
        if v.len() <= n {
            return out;
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
        for i in n + 1..v.len() {
            let d = v[i] - v[i - 1];
            gain = (gain * (nf - 1.0) + d.max(0.0)) / nf;
            loss = (loss * (nf - 1.0) + (-d).max(0.0)) / nf;
            out[i] = rsi_value(gain, loss);
        }
        out
    }))
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
        a = (a * (nf - 1.0) + tr[j]) / nf;
        out[idx[j]] = a;
    }
    Ok(out)
}

/// Bollinger bands: (middle, upper, lower).
pub fn bollinger(x: &[f64], n: usize, k: f64) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    check_window("bollinger", n)?;
    if !k.is_finite() {
        return Err(EngineError::config(format!(
            "bollinger: k must be finite, got {k}"
        )));
    }
    let mid = sma(x, n)?;
    // Two-pass variance per window: exact to rounding, O(n * window), computed once per run.
    let sd = over_present(x, |v| {
        let mut out = vec![f64::NAN; v.len()];
        for i in (n - 1)..v.len() {
            let w = &v[i + 1 - n..=i];
            let m = w.iter().sum::<f64>() / n as f64;
            out[i] = (w.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / n as f64).sqrt();
        }
        out
    });
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
