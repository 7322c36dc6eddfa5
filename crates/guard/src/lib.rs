#![doc = include_str!("../README.md")]

mod connections;
mod signin;

pub use connections::{ConnectionCap, ConnectionPermit};
pub use signin::{Budgets, Lockout, Refusal, Scope, SignInGuard};
