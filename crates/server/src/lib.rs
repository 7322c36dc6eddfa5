#![doc = include_str!("../README.md")]

pub mod accounts;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod control_chars;
pub mod cors;
pub mod doctor;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod oauth;
pub mod policy;
pub mod proxy;
pub mod routes;
pub mod serve;
pub mod telemetry;
pub mod tls;
pub mod token_cli;
pub mod web;

pub use app::{AppState, router};
pub use config::Config;
pub use error::ApiError;
