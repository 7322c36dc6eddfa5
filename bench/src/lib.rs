#![doc = include_str!("../README.md")]

pub mod scenarios;
pub mod stats;
