#![doc = include_str!("../README.md")]

pub mod scenarios;
pub mod server;
pub mod stats;
