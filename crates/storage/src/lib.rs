#![doc = include_str!("../README.md")]

mod accounts;
mod audit;
mod connections;
mod error;
mod grants;
mod hist;
mod identities;
mod machines;
mod migrate;
mod oauth;
mod policy;
mod pool;
mod revocations;
mod roles;
mod schema;
mod sealed;
mod secrets;
mod sessions;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod time;
mod tokens;
mod users;

pub use accounts::{ConsentInfo, FamilyInfo, SessionInfo};
pub use audit::{AuditEvent, AuditQuery};
pub use connections::ConnectedAccount;
pub use error::StorageError;
pub use grants::{GrantTokens, LeaseClaim, ProviderGrant};
pub use hist::CheckoutStats;
pub use identities::Identity;
pub use machines::{NewServiceClient, PersonalToken, ServiceClient};
pub use oauth::{AuthorizationCode, CodeOutcome, OAuthClient, PendingLogin};
pub use policy::{Activity, StoredGrant, StoredMapping, StoredPolicy, StoredRole, UserAccess};
pub use pool::{Backend, PoolStatus, Store, StoreOptions};
pub use revocations::Revoked;
pub use roles::Team;
pub use sealed::{SealedRow, SealedTable};
pub use secrets::UpstreamSecret;
pub use sessions::SessionRecord;
pub use time::now_ms;
pub use tokens::{
    AccessTokenRecord, FamilyRecord, NewAccessToken, NewRefreshToken, NewTokenFamily,
    RotateOutcome, Successors,
};
pub use users::{NewUser, User, new_id, normalize_email};
