//! Times the Rust-native drivers without Python: `cargo run --release --example native_speed`.

use std::time::Instant;

use bt_engine_core::drivers::{run, SmaCross};
use bt_engine_core::{Bars, Broker, Config};

fn main() {
    let n = 1_000_000usize;
    let mut c = Vec::with_capacity(n);
    let mut p = 100.0f64;
    let mut state = 0x2545F4914F6CDD1Du64;
    for _ in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        p *= 1.0 + 0.02 * u;
        c.push(p);
    }
    let o: Vec<f64> = std::iter::once(c[0])
        .chain(c[..n - 1].iter().copied())
        .collect();
    let h: Vec<f64> = o.iter().zip(&c).map(|(a, b)| a.max(*b) * 1.001).collect();
    let l: Vec<f64> = o.iter().zip(&c).map(|(a, b)| a.min(*b) * 0.999).collect();
    let v = vec![1.0; n];
    let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000_000_000).collect();
    let t0 = Instant::now();
    let bars = Bars::new(&ts, &o, &h, &l, &c, &v, 1).unwrap();
    let t1 = Instant::now();
    let mut drv = SmaCross::new(&bars, 10, 30, 1.0).unwrap();
    let t2 = Instant::now();
    let cfg = Config {
        cash: 1e9,
        commission_rate: 0.0005,
        ..Config::default()
    };
    let mut b = Broker::new(cfg, 1).unwrap();
    run(&bars, &mut b, &mut drv).unwrap();
    let t3 = Instant::now();
    println!(
        "validate {:?}, indicators {:?}, loop {:?} ({:.1} M bars/s), fills {}",
        t1 - t0,
        t2 - t1,
        t3 - t2,
        n as f64 / (t3 - t2).as_secs_f64() / 1e6,
        b.fills().len()
    );
}
