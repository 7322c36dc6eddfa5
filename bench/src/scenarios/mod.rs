//! One module per `cargo xtask bench <scenario>`.

pub mod credentials;
pub mod crypto;
pub mod identity;
pub mod login;
pub mod oauth;
pub mod proxy;
pub mod rbac;
pub mod rbac_load;
pub mod storage;
