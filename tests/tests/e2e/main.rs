//! End-to-end suites. One binary, one module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its message"
)]

mod accounts;
mod admin_ui;
mod conformance;
mod connect;
mod doctor;
mod faults;
mod first_run;
mod hardening;
mod health;
mod identity;
mod keys;
mod machines;
mod oauth;
mod oauth_edge;
mod pages;
mod provider_flows;
mod providers;
mod proxy;
mod proxy_answers;
mod proxy_clients;
mod proxy_streams;
mod rbac;
mod upstream_credentials;
mod upstream_oauth_conformance;
