//! Errors of the engine core. Each carries a kind, a message that says what was wrong and
//! where, and structured fields (bar, time, symbol, column, row, parameter ...) so that the
//! binding can raise a typed Python exception that programs can inspect.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The market data is malformed (shape, ordering, prices).
    Data,
    /// A configuration value or argument is out of range.
    Config,
    /// An order request is invalid (size, price, symbol).
    Order,
    /// A driver stopped the run; the driver keeps its own error (e.g. a Python exception).
    Driver,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Data => "data",
            ErrorKind::Config => "config",
            ErrorKind::Order => "order",
            ErrorKind::Driver => "driver",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
    /// Where and what: ("bar", "12"), ("symbol", "600000.SH"), ("column", "close") ...
    pub fields: Vec<(&'static str, String)>,
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            fields: Vec::new(),
        }
    }
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, message)
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    pub fn order(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Order, message)
    }
    pub fn driver(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Driver, message)
    }
    /// Attach a structured field (builder style).
    pub fn with_field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

pub type Result<T> = std::result::Result<T, EngineError>;
