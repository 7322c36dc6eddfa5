//! Every Store unit of work on both backends. PostgreSQL runs when MCPGATE_TEST_DATABASE_URL
//! is set (each test gets its own database); otherwise its variants print SKIPPED.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its message"
)]

#[macro_use]
mod support;

mod admin;
mod connections;
mod lease;
mod machines;
mod oauth;
mod policy;
mod pool;
mod records;
mod tokens;
mod upgrade;
