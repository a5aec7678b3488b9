//! The bar loop's cost without Python: the built-in SMA cross and signal arrays over one
//! symbol of synthetic bars, market orders only (none of the order kinds, paths or fee
//! lines of the market-realism work). Run under `valgrind --tool=callgrind` by
//! `benchmarks/loop_instructions.sh`, which counts instructions: a figure that does not
//! depend on what else the machine is doing, so that two builds compare fairly.
//!
//!     cargo run --release -p bt-engine-core --example loop_cost -- 200000

use bt_engine_core::drivers::{run, Signals, SmaCross};
use bt_engine_core::{Bars, Broker, Config, Sizing};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    // A deterministic random walk (xorshift), so every build sees the same bars.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut p = 100.0f64;
    let (mut o, mut h, mut l, mut c) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.02;
        let open = p;
        p *= 1.0 + r;
        o.push(open);
        c.push(p);
        h.push(open.max(p) * 1.002);
        l.push(open.min(p) * 0.998);
    }
    let v = vec![1e6; n];
    let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000_000_000).collect();
    let bars = Bars::new(&ts, &o, &h, &l, &c, &v, 1).unwrap();
    let cfg = Config {
        commission_rate: 0.0005,
        slippage_bps: 1.0,
        ..Config::default()
    };
    let mut b = Broker::new(cfg.clone(), 1).unwrap();
    let mut cross = SmaCross::new(&bars, 10, 30, 1.0)
        .unwrap()
        .with_sizing(Sizing::EquityPct);
    run(&bars, &mut b, &mut cross).unwrap();
    let entries: Vec<bool> = (0..n).map(|i| i % 50 == 0).collect();
    let exits: Vec<bool> = (0..n).map(|i| i % 50 == 25).collect();
    let mut b2 = Broker::new(cfg, 1).unwrap();
    let mut sig = Signals {
        entries: &entries,
        exits: &exits,
        size: 10.0,
        sizing: Sizing::Units,
        short_entries: None,
        short_exits: None,
    };
    run(&bars, &mut b2, &mut sig).unwrap();
    println!(
        "bars {n}: sma_cross fills {} equity {:.6}; signals fills {} equity {:.6}",
        b.fills().len(),
        b.equity(),
        b2.fills().len(),
        b2.equity()
    );
}
