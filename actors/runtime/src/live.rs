//! Live configuration: the keys an actor lets change while it runs, and the message that
//! changes one. The owning actor validates and applies the value and answers with the old one;
//! the service persists the override and applies it again at the next start.

use actix::prelude::*;
use serde::Serialize;
use serde_json::Value;

/// A key that may change at run time, declared by the actor that applies it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LiveKey {
    /// Dotted name (`detection.kerberos.spray_threshold`).
    pub key: String,
    /// What it does and what values it takes.
    pub description: &'static str,
    /// `bool`, `integer`, `number` or `string`.
    pub kind: &'static str,
}

/// Changes one key of the receiving actor.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ParamChange, String>")]
pub struct SetParam {
    /// One of the actor's [`LiveKey`]s.
    pub key: String,
    /// The new value.
    pub value: Value,
}

/// What a change did.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ParamChange {
    /// Value before.
    pub old: Value,
    /// Value now in force (as the actor understood it).
    pub new: Value,
}

/// Reads a value of the expected kind, naming the key in the error.
pub fn expect_u64(key: &str, v: &Value) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("{key}: expected a non-negative integer, got {v}"))
}

/// Reads a boolean, naming the key in the error.
pub fn expect_bool(key: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{key}: expected true or false, got {v}"))
}

/// Reads a number, naming the key in the error.
pub fn expect_f64(key: &str, v: &Value) -> Result<f64, String> {
    v.as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| format!("{key}: expected a number, got {v}"))
}

impl LiveKey {
    /// A key declaration.
    pub fn new(key: impl Into<String>, kind: &'static str, description: &'static str) -> Self {
        LiveKey {
            key: key.into(),
            description,
            kind,
        }
    }
}
