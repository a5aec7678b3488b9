//! Exactness and robustness of the windowed indicators: ties of decimal prices stay ties, every
//! average stays within rounding of a fresh sum of its window (also after huge values and
//! infinities), hostile windows neither allocate nor panic, and the built-in SMA cross trades
//! on exactly the averages that `indicators::sma` returns.

use std::time::{Duration, Instant};

use bt_engine_core::drivers::{run, Driver, SmaCross};
use bt_engine_core::indicators::{atr, bollinger, ema, rsi, sma, RollingMean, SeriesScan};
use bt_engine_core::{Bars, Broker, Config, OrderRequest, Side};

const DAY: i64 = 86_400_000_000_000;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in lo..=hi.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// Mean of `w` summed left to right from 0, as a direct computation of the window would.
fn fresh(w: &[f64]) -> f64 {
    w.iter().fold(0.0, |a, b| a + b) / w.len() as f64
}

/// The fresh means of every full window of `n` (NaN before).
fn fresh_sma(x: &[f64], n: usize) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            if i + 1 < n {
                f64::NAN
            } else {
                fresh(&x[i + 1 - n..=i])
            }
        })
        .collect()
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Integer prices (in units of the quote step) following a random walk from `start`, where
/// every few bars the price is instead chosen so that the mean of the last `fast` equals the
/// mean of the last `slow` exactly (when that price is a positive integer; otherwise the next
/// bar tries again).
fn tie_walk(
    rng: &mut Rng,
    len: usize,
    start: i64,
    step: i64,
    fast: usize,
    slow: usize,
) -> Vec<i64> {
    let mut u = vec![start];
    let (mut level, mut want_tie) = (start, false);
    while u.len() < len {
        let t = u.len();
        level = (level + rng.int(-step, step)).max(start / 2);
        let mut next = level;
        want_tie |= t % 7 == 0;
        if want_tie && t >= slow {
            // slow * (A + c) = fast * (B + c), A and B the sums of the other fast-1 and slow-1.
            let a: i64 = u[t + 1 - fast..t].iter().sum();
            let b: i64 = u[t + 1 - slow..t].iter().sum();
            let num = fast as i64 * b - slow as i64 * a;
            let den = (slow - fast) as i64;
            if num % den == 0 && num / den > 0 {
                next = num / den;
                want_tie = false;
            }
        }
        u.push(next);
    }
    u
}

/// Sum of the `n` units ending at t (exact).
fn window_sum(u: &[i64], t: usize, n: usize) -> i64 {
    u[t + 1 - n..=t].iter().sum()
}

fn to_prices(u: &[i64], places: i32) -> Vec<f64> {
    let p = 10f64.powi(places);
    u.iter().map(|&m| m as f64 / p).collect()
}

#[test]
fn equal_means_of_decimal_windows_are_equal_doubles() {
    // 2-decimal daily-like prices, and 8 decimals (crypto quotes), well past 1024 values.
    for (seed, start, step, places) in [
        (1, 10_000, 40, 2),
        (2, 1_234, 9, 2),
        (3, 4_321_000_000, 2_000_000, 8),
    ] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let u = tie_walk(&mut rng, 5_000, start, step, 10, 30);
        let x = to_prices(&u, places);
        let (f, s) = (sma(&x, 10).unwrap(), sma(&x, 30).unwrap());
        let (ff, fs) = (fresh_sma(&x, 10), fresh_sma(&x, 30));
        let mut ties = 0;
        for t in 29..x.len() {
            // Exact comparison of the means: 30 * fast_sum vs 10 * slow_sum.
            let exact = (3 * window_sum(&u, t, 10)).cmp(&window_sum(&u, t, 30));
            assert_eq!(
                f[t].partial_cmp(&s[t]),
                Some(exact),
                "seed {seed}, bar {t}: {} vs {}",
                f[t],
                s[t]
            );
            ties += usize::from(exact.is_eq());
            if ff[t] == fs[t] {
                assert_eq!(f[t].to_bits(), s[t].to_bits(), "fresh sums tie at {t}");
            }
            for (got, want) in [(f[t], ff[t]), (s[t], fs[t])] {
                assert!((got - want).abs() <= 1e-14 * want.abs(), "{got} vs {want}");
            }
        }
        assert!(ties > 500, "seed {seed}: only {ties} ties");
    }
}

#[test]
fn constructed_touch_is_a_tie() {
    // Fast (10) and slow (30) means of 2-decimal prices meet at the last bar: the last 10
    // average 10.34 and so do the 20 before them (ten at 10.33, ten at 10.35).
    let mut x = vec![10.33; 10];
    x.extend([10.35; 10]);
    x.extend([
        10.31, 10.37, 10.32, 10.36, 10.33, 10.35, 10.34, 10.34, 10.30, 10.38,
    ]);
    let (f, s) = (sma(&x, 10).unwrap(), sma(&x, 30).unwrap());
    assert_eq!(f[29], s[29]);
    assert_eq!(f[29], 10.34);
}

/// Datasets of several kinds, each with its name.
fn datasets(seed: u64) -> Vec<(&'static str, Vec<f64>)> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ seed);
    let n = 3_000;
    let mut gbm = vec![100.0f64];
    while gbm.len() < n {
        let last = gbm[gbm.len() - 1];
        gbm.push(last * (1.0 + 0.02 * (rng.unit() - 0.5)));
    }
    let cents = gbm.iter().map(|p| (p * 100.0).round() / 100.0).collect();
    let quarter_ticks = gbm.iter().map(|p| (p * 4.0).round() / 4.0).collect();
    let crypto = gbm
        .iter()
        .map(|p| (p * 431.7 * 1e8).round() / 1e8)
        .collect();
    let returns = (0..n).map(|_| rng.unit() - 0.5).collect();
    let dyadic = tie_walk(&mut rng, n, 100 << 20, 1 << 16, 10, 30)
        .iter()
        .map(|&m| m as f64 / (1u64 << 20) as f64)
        .collect();
    let big = gbm.iter().map(|p| p * 1e12).collect();
    vec![
        ("gbm", gbm),
        ("cents", cents),
        ("quarter ticks", quarter_ticks),
        ("crypto", crypto),
        ("returns", returns),
        ("dyadic", dyadic),
        ("big", big),
    ]
}

#[test]
fn every_average_is_within_rounding_of_a_fresh_sum() {
    for seed in 0..3 {
        for (name, x) in datasets(seed) {
            let mut by_window = Vec::new();
            for n in [1, 2, 7, 10, 30, 200, 1500] {
                let got = sma(&x, n).unwrap();
                let want = fresh_sma(&x, n);
                for t in 0..x.len() {
                    if t + 1 < n {
                        assert!(got[t].is_nan(), "{name} n={n} t={t}");
                        continue;
                    }
                    // Both are within about n ulps of the magnitudes summed.
                    let scale: f64 =
                        x[t + 1 - n..=t].iter().map(|v| v.abs()).sum::<f64>() / n as f64;
                    let tol = 2.0 * n as f64 * f64::EPSILON * scale;
                    assert!(
                        (got[t] - want[t]).abs() <= tol,
                        "{name} n={n} t={t}: {} vs {}",
                        got[t],
                        want[t]
                    );
                }
                if n == 1 {
                    assert!(same_bits(&got, &x), "{name}: sma(x, 1) is x");
                }
                by_window.push((n, got, want));
            }
            // Wherever the fresh sums of two windows tie, so do the averages.
            for (i, (n1, g1, w1)) in by_window.iter().enumerate() {
                for (n2, g2, w2) in &by_window[i + 1..] {
                    for t in *n2.max(n1) - 1..x.len() {
                        if w1[t] == w2[t] {
                            assert_eq!(g1[t], g2[t], "{name} n={n1}/{n2} t={t}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn push_all_and_push_agree_bit_for_bit() {
    for (name, x) in datasets(7) {
        let scan = SeriesScan::of(x.iter().copied());
        for n in [1, 3, 10, 30, 1024, 2999, 3000] {
            let all = RollingMean::new(n, &scan).unwrap().push_all(&x);
            let mut m = RollingMean::new(n, &scan).unwrap();
            let one: Vec<f64> = x.iter().map(|&v| m.push(v)).collect();
            assert!(same_bits(&all, &one), "{name} n={n}");
            assert!(same_bits(&all, &sma(&x, n).unwrap()), "{name} n={n}");
        }
    }
}

#[test]
fn ema_is_seeded_with_the_sma_bit_for_bit() {
    for (name, x) in datasets(8) {
        for n in [1, 10, 30, 200] {
            let (e, s) = (ema(&x, n).unwrap(), sma(&x, n).unwrap());
            assert_eq!(e[n - 1].to_bits(), s[n - 1].to_bits(), "{name} n={n}");
        }
    }
}

#[test]
fn window_longer_than_the_data_is_all_nan_and_allocates_nothing() {
    let x: Vec<f64> = (0..1000).map(|i| 100.0 + (i as f64 * 0.1).sin()).collect();
    let t0 = Instant::now();
    for n in [x.len() + 1, 1 << 40, usize::MAX / 2, usize::MAX] {
        assert!(sma(&x, n).unwrap().iter().all(|v| v.is_nan()));
        assert!(ema(&x, n).unwrap().iter().all(|v| v.is_nan()));
        assert!(rsi(&x, n).unwrap().iter().all(|v| v.is_nan()));
        assert!(atr(&x, &x, &x, n).unwrap().iter().all(|v| v.is_nan()));
        let (m, u, l) = bollinger(&x, n, 2.0).unwrap();
        assert!(m.iter().chain(&u).chain(&l).all(|v| v.is_nan()));
        // A rolling mean grows with the values pushed, not with the window.
        let mut r = RollingMean::new(n, &SeriesScan::of(x.iter().copied())).unwrap();
        assert!(x.iter().all(|&v| r.push(v).is_nan()));
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(sma(&x, 0).is_err());
}

/// One symbol of daily bars with the given closes (open = close, a 1% range around it).
struct Data {
    ts: Vec<i64>,
    o: Vec<f64>,
    h: Vec<f64>,
    l: Vec<f64>,
    c: Vec<f64>,
    v: Vec<f64>,
}

impl Data {
    fn closes(c: &[f64]) -> Self {
        Self {
            ts: (0..c.len() as i64)
                .map(|i| 1_600_000_000_000_000_000 + i * DAY)
                .collect(),
            o: c.to_vec(),
            h: c.iter()
                .map(|p| if p.is_nan() { *p } else { p * 1.01 })
                .collect(),
            l: c.iter()
                .map(|p| if p.is_nan() { *p } else { p * 0.99 })
                .collect(),
            c: c.to_vec(),
            v: c.iter()
                .map(|p| if p.is_nan() { *p } else { 1000.0 })
                .collect(),
        }
    }
    fn bars(&self) -> Bars<'_> {
        Bars::new(&self.ts, &self.o, &self.h, &self.l, &self.c, &self.v, 1).unwrap()
    }
}

/// The cross rule on precomputed averages, as a Python strategy applies it.
struct ArrayCross {
    fast: Vec<f64>,
    slow: Vec<f64>,
}

impl Driver for ArrayCross {
    fn on_bar(&mut self, t: usize, bars: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
        if t == 0 || !bars.has_bar(t, 0) {
            return Ok(());
        }
        let (f0, s0, f1, s1) = (
            self.fast[t],
            self.slow[t],
            self.fast[t - 1],
            self.slow[t - 1],
        );
        if f1 < s1 && f0 > s0 && b.position(0) == 0.0 && !b.has_active_order(0) {
            b.submit(OrderRequest::market(0, Side::Buy, 1.0))?;
        } else if f1 > s1 && f0 < s0 && b.position(0) > 0.0 && !b.has_active_order(0) {
            b.submit(OrderRequest::market(0, Side::Sell, b.position(0)))?;
        }
        Ok(())
    }
}

fn broker() -> Broker {
    let cfg = Config {
        cash: 1e18,
        ..Config::default()
    };
    Broker::new(cfg, 1).unwrap()
}

/// The built-in cross and the cross on `indicators::sma` arrays: the same fills (returned).
fn cross_both_ways(closes: &[f64], fast: usize, slow: usize) -> usize {
    let d = Data::closes(closes);
    let bars = d.bars();
    let mut a = broker();
    run(
        &bars,
        &mut a,
        &mut SmaCross::new(&bars, fast, slow, 1.0).unwrap(),
    )
    .unwrap();
    let mut b = broker();
    let mut arrays = ArrayCross {
        fast: sma(closes, fast).unwrap(),
        slow: sma(closes, slow).unwrap(),
    };
    run(&bars, &mut b, &mut arrays).unwrap();
    assert_eq!(a.fills(), b.fills());
    assert!(same_bits(a.equity_curve(), b.equity_curve()));
    a.fills().len()
}

/// Prices in cents whose fast mean never rises strictly above the slow one after being
/// below it, but touches it (an exact tie) again and again.
fn touching_walk(rng: &mut Rng, len: usize) -> Vec<i64> {
    let mut u: Vec<i64> = (0..30).map(|i| 20_000 - 7 * i).collect();
    let mut touches = 0;
    while u.len() < len {
        let t = u.len();
        let a: i64 = u[t - 9..].iter().sum();
        let b: i64 = u[t - 29..].iter().sum();
        let below = 3 * (a + u[t - 10]) < b + u[t - 30];
        let mut c = u[t - 1] + rng.int(-30, 40);
        // 30 * (a + c) / 10 vs b + c: with the bar before below, c may at most tie.
        let cap = (b - 3 * a).div_euclid(2);
        if below && c >= cap {
            c = if (b - 3 * a) % 2 == 0 && rng.unit() < 0.7 {
                cap
            } else {
                cap - 1
            };
            touches += usize::from(3 * (a + c) == b + c);
        }
        u.push(c.max(100));
    }
    assert!(touches > 50, "{touches}");
    u
}

#[test]
fn builtin_cross_does_not_trade_when_the_averages_only_touch() {
    for seed in 0..4 {
        let mut rng = Rng(0xA076_1D64_78BD_642F ^ seed);
        let u = touching_walk(&mut rng, 4_000);
        // Exactly: no bar where fast < slow before and fast > slow after, but many ties.
        let rel = |t: usize| (3 * window_sum(&u, t, 10)).cmp(&window_sum(&u, t, 30));
        let mut ties = 0;
        for t in 30..u.len() {
            assert!(
                !(rel(t - 1).is_lt() && rel(t).is_gt()),
                "seed {seed}: cross at {t}"
            );
            ties += usize::from(rel(t - 1).is_lt() && rel(t).is_eq());
        }
        assert!(ties > 50, "seed {seed}: {ties} touches");
        let closes = to_prices(&u, 2);
        assert_eq!(cross_both_ways(&closes, 10, 30), 0, "seed {seed}");
    }
}

#[test]
fn builtin_cross_equals_the_sma_arrays_on_decimal_and_float_data_with_gaps() {
    for (name, mut x) in datasets(11) {
        if x.iter().any(|v| *v <= 0.0) {
            continue; // returns are not prices
        }
        for i in (0..x.len()).filter(|i| i % 89 == 5) {
            x[i] = f64::NAN;
        }
        let fills = cross_both_ways(&x, 10, 30);
        assert!(fills > 20, "{name}: {fills}");
    }
}

#[test]
fn builtin_cross_with_windows_beyond_the_data_runs_without_trading() {
    let x: Vec<f64> = (0..500).map(|i| 100.0 + (i as f64 * 0.1).sin()).collect();
    let d = Data::closes(&x);
    let bars = d.bars();
    for (fast, slow) in [
        (500, 501),
        (1 << 40, (1 << 40) + 1),
        (usize::MAX / 2, usize::MAX),
    ] {
        let t0 = Instant::now();
        let mut b = broker();
        run(
            &bars,
            &mut b,
            &mut SmaCross::new(&bars, fast, slow, 1.0).unwrap(),
        )
        .unwrap();
        assert!(b.fills().is_empty());
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}

/// Normal prices with one huge value in the middle.
fn spiked(decimal: bool, spike: f64) -> Vec<f64> {
    let mut rng = Rng(0x5EED);
    let mut x: Vec<f64> = (0..2_000)
        .map(|i| 100.0 + 5.0 * (i as f64 * 0.05).sin() + rng.unit())
        .collect();
    if decimal {
        x.iter_mut().for_each(|p| *p = (*p * 100.0).round() / 100.0);
    }
    x[300] = spike;
    x
}

#[test]
fn a_huge_value_leaves_no_trace_once_it_has_left_the_window() {
    for decimal in [false, true] {
        for spike in [1e300, -1e300, 1e308, f64::MAX] {
            let x = spiked(decimal, spike);
            for n in [10, 30, 1500] {
                let got = sma(&x, n).unwrap();
                let want = fresh_sma(&x, n);
                for t in n - 1..x.len() {
                    let inside = (t + 1 - n..=t).contains(&300);
                    if inside {
                        // The spike dominates; its mean is finite (sums are scaled so that even
                        // f64::MAX does not overflow them).
                        let w = spike / n as f64;
                        assert!((got[t] - w).abs() <= 1e-12 * w.abs(), "{spike} n={n} t={t}");
                    } else {
                        let w = want[t];
                        assert!(
                            (got[t] - w).abs() <= 1e-12 * w.abs(),
                            "{spike} n={n} t={t}: {}",
                            got[t]
                        );
                    }
                }
            }
            // The bands' deviation after the spike is that of each window, summed afresh.
            let (mid, upper, _) = bollinger(&x, 20, 2.0).unwrap();
            for t in 320..x.len() {
                let w = &x[t - 19..=t];
                let m = fresh(w);
                let sd = (w.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 20.0).sqrt();
                assert!((mid[t] - m).abs() <= 1e-12 * m, "t={t}");
                assert!(
                    ((upper[t] - mid[t]) / 2.0 - sd).abs() <= 1e-9 * sd.max(1e-3),
                    "t={t}"
                );
            }
            // The deviation of a window with the spike is finite and right (the squares are
            // taken at a scale where they fit).
            let (mid, upper, _) = bollinger(&x, 20, 1.0).unwrap();
            let w = &x[300..320];
            let sd = spike.abs() / 20.0 * 19f64.sqrt();
            assert!(
                ((upper[319] - mid[319]) - sd).abs() <= 1e-12 * sd,
                "{}",
                upper[319]
            );
            assert!((mid[319] - fresh_scaled(w)).abs() <= 1e-12 * mid[319].abs());
            if spike == 1e300 {
                cross_both_ways(&x, 10, 30);
            }
        }
    }
}

/// Mean of values whose plain sum may overflow.
fn fresh_scaled(w: &[f64]) -> f64 {
    w.iter().map(|v| v / 1024.0).sum::<f64>() / w.len() as f64 * 1024.0
}

#[test]
fn infinities_only_affect_their_windows() {
    let mut x = spiked(true, f64::INFINITY);
    x[900] = f64::NEG_INFINITY;
    x[905] = f64::INFINITY;
    for n in [1, 10, 30] {
        let got = sma(&x, n).unwrap();
        let want = fresh_sma(&x, n);
        for t in n - 1..x.len() {
            let has = |i: usize| (t + 1 - n..=t).contains(&i);
            if has(300) || has(905) && !has(900) {
                assert_eq!(got[t], f64::INFINITY, "n={n} t={t}");
            } else if has(900) && has(905) {
                assert!(got[t].is_nan(), "n={n} t={t}");
            } else if has(900) {
                assert_eq!(got[t], f64::NEG_INFINITY, "n={n} t={t}");
            } else {
                assert!((got[t] - want[t]).abs() <= 1e-13 * want[t], "n={n} t={t}");
            }
        }
    }
}

#[test]
fn missing_bars_are_skipped() {
    for (name, x) in datasets(5) {
        let mut gappy = x.clone();
        let mut present = Vec::new();
        for (i, v) in gappy.iter_mut().enumerate() {
            if i % 7 == 3 || (100..140).contains(&i) {
                *v = f64::NAN;
            } else {
                present.push(*v);
            }
        }
        for n in [1, 10, 30] {
            let got = sma(&gappy, n).unwrap();
            let dense = sma(&present, n).unwrap();
            let scattered: Vec<f64> = got.iter().copied().filter(|v| !v.is_nan()).collect();
            let expected: Vec<f64> = dense.iter().copied().filter(|v| !v.is_nan()).collect();
            assert!(same_bits(&scattered, &expected), "{name} n={n}");
            assert!(got
                .iter()
                .zip(&gappy)
                .all(|(g, x)| !x.is_nan() || g.is_nan()));
        }
    }
}

#[test]
fn a_value_outside_the_scan_switches_to_float_arithmetic() {
    let x: Vec<f64> = (0..200).map(|i| 100.0 + (i % 13) as f64 * 0.25).collect();
    let scan = SeriesScan::of(x.iter().copied());
    assert_eq!(scan.places, Some(2));
    let mut m = RollingMean::new(10, &scan).unwrap();
    let mut pushed = Vec::new();
    let extra = [100.000_000_123, 1e300, f64::INFINITY, 99.5, 1e-300];
    for (i, &v) in x.iter().chain(&extra).chain(&x).enumerate() {
        pushed.push(v);
        let got = m.push(v);
        if i >= 9 {
            let w = &pushed[i - 9..];
            if w.iter().any(|v| v.is_infinite()) {
                assert_eq!(got, f64::INFINITY);
            } else {
                let want = fresh(w);
                assert!(
                    (got - want).abs() <= 1e-13 * want.abs(),
                    "{i}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn the_scan_finds_the_decimal_places() {
    let places = |x: &[f64]| SeriesScan::of(x.iter().copied()).places;
    assert_eq!(places(&[1.0, 2.0, f64::NAN]), Some(0));
    assert_eq!(places(&[12.34, 12.35, 12.3]), Some(2));
    assert_eq!(places(&[0.1 + 0.2]), None); // 0.30000000000000004 is no short decimal
    assert_eq!(places(&[43_210.123_456_78]), Some(8));
    assert_eq!(places(&[1.0, f64::INFINITY]), None);
    assert_eq!(places(&[1e300]), None);
    let s = SeriesScan::of([f64::NAN, -3.5, 2.0, f64::INFINITY]);
    assert_eq!((s.present, s.max_abs), (3, 3.5));
}
