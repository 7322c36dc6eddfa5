#![doc = include_str!("../README.md")]

mod action;
mod error;
mod pattern;

pub use action::{Action, ActionSet};
pub use error::PolicyError;
pub use pattern::Pattern;
