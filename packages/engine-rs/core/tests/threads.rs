//! The engine's state is not pinned to a thread: validated data is shared, each run's broker
//! and driver move to a worker thread, and a sweep on threads equals the same runs in order.

use std::sync::Arc;
use std::thread;

use bt_engine_core::drivers::{run, SmaCross};
use bt_engine_core::{BarData, Broker, Config, SymbolInput};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

#[test]
fn rooms_are_send_and_data_is_sync() {
    assert_send::<Broker>();
    assert_send::<SmaCross>();
    assert_send::<BarData>();
    assert_sync::<BarData>();
}

fn data(n: usize) -> BarData {
    let mut p = 100.0f64;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let close: Vec<f64> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            p *= 1.0 + 0.01 * ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5);
            p
        })
        .collect();
    let high: Vec<f64> = close.iter().map(|c| c * 1.001).collect();
    let low: Vec<f64> = close.iter().map(|c| c * 0.999).collect();
    let vol = vec![1.0; n];
    let ts: Vec<i64> = (0..n as i64).map(|i| i * 60_000_000_000).collect();
    BarData::from_symbols(&[SymbolInput {
        name: "X",
        label: "X",
        ts: &ts,
        open: &close,
        high: &high,
        low: &low,
        close: &close,
        volume: &vol,
        rows: None,
        extra: &[],
    }])
    .unwrap()
}

fn one(d: &BarData, fast: usize, slow: usize) -> Vec<u64> {
    let bars = d.bars();
    let cfg = Config {
        commission_rate: 0.0005,
        ..Config::default()
    };
    let mut b = Broker::new(cfg, 1).unwrap();
    let mut drv = SmaCross::new(&bars, fast, slow, 1.0).unwrap();
    run(&bars, &mut b, &mut drv).unwrap();
    b.equity_curve().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_sweep_on_threads_equals_the_runs_in_order() {
    let d = Arc::new(data(20_000));
    let params: Vec<(usize, usize)> = (2..8).flat_map(|f| [(f, 20), (f, 35)]).collect();
    let sequential: Vec<Vec<u64>> = params.iter().map(|&(f, s)| one(&d, f, s)).collect();
    let threaded: Vec<Vec<u64>> = params
        .iter()
        .map(|&(f, s)| {
            let d = Arc::clone(&d);
            thread::spawn(move || one(&d, f, s))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(sequential, threaded);
}
