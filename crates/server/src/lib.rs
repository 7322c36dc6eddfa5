#![doc = include_str!("../README.md")]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod proxy;
pub mod routes;
pub mod serve;
pub mod telemetry;

pub use app::{AppState, router};
pub use config::Config;
pub use error::ApiError;
