//! End-to-end suites. One binary, one module per area.

mod health;
mod proxy;
mod proxy_clients;
