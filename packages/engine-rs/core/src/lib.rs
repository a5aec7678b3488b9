//! pyrust-bt engine core: market data, matching, ledger, indicators and Rust-native drivers,
//! in plain Rust so that it is tested with `cargo test` without Python.

pub mod broker;
pub mod config;
pub mod costs;
pub mod data;
pub mod drivers;
pub mod error;
pub mod indicators;
pub mod instrument;
pub mod ledger;
pub mod limits;
pub mod matching;
pub mod mem;
pub mod numsum;
pub mod orders;
pub mod resample;
pub mod rules;
pub mod settlement;
pub mod sweep;
pub mod time;
pub mod types;

pub use broker::Broker;
pub use config::{AccountKind, Config, FillOn, InstrumentSettings};
pub use data::{BarData, Bars, Column, SharedValues, SymbolInput, Values};
pub use error::{EngineError, ErrorKind, Result};
pub use instrument::Instrument;
pub use types::{
    Event, Fill, Order, OrderKind, OrderRequest, OrderStatus, Side, Sizing, TimeInForce, Trade,
};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
