//! Entry points for the fuzz targets in the repository's `fuzz/` folder: each takes arbitrary
//! bytes, drives one real parser or check of the gateway with them, and asserts what must
//! hold whatever the input. A panic is a finding. Built only for this crate's tests (which
//! replay the committed corpora through them) and with the `fuzzing` feature.

use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use mcpgate_crypto::{Place, SecretBox};
use mcpgate_rbac::McpMethod;
use zeroize::Zeroizing;

use crate::config::{ClientMetadataConfig, Config};
use crate::oauth::{cimd, redirect, scopes};
use crate::proxy::jsonrpc::Message;
use crate::proxy::session::SessionIds;

/// A fuzz target: arbitrary bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name of their corpus folder (`fuzz/corpus/<name>`).
pub const TARGETS: &[(&str, Target)] = &[
    ("jsonrpc", jsonrpc),
    ("client_metadata", client_metadata),
    ("sealed", sealed),
    ("session_id", session_id),
    ("redirect_uri", redirect_uri),
    ("config", config),
];

/// Splits an input at its first newline: two strings for targets that take two.
fn two_parts(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => (String::from_utf8_lossy(data).into_owned(), &[]),
    }
}

/// The proxy's parse step: one JSON-RPC message, classified by the MCP method table.
pub fn jsonrpc(data: &[u8]) {
    if let Ok(message) = Message::parse(data) {
        let row = message.row();
        if let Some(method) = message.method.as_deref() {
            assert_eq!(row, McpMethod::of(method));
            let _ = row.names_an_item();
            for revision in crate::proxy::parse::KNOWN_VERSIONS {
                let _ = row.exists_in(revision);
            }
        } else {
            assert!(message.target.is_none() && message.name.is_none());
        }
        if message.name.is_some() {
            assert_eq!(message.name, message.target);
        }
        let _ = message.is_request();
        let _ = message.error_id();
    }
    let _ = McpMethod::of(&String::from_utf8_lossy(data));
}

/// Client metadata: a CIMD document fetched from the URL on the first line, and the same
/// bytes as a dynamic registration (RFC 7591) body.
pub fn client_metadata(data: &[u8]) {
    let (client_id, body) = two_parts(data);
    let config = ClientMetadataConfig::default();
    let _ = cimd::is_document_url(&client_id);
    if let Ok(url) = cimd::check_url(&client_id, &config) {
        assert_eq!(url.scheme(), "https");
    }
    if let Ok(doc) = cimd::parse(&client_id, body, Duration::ZERO) {
        assert!(!doc.client_name.trim().is_empty());
        assert!(!doc.redirect_uris.is_empty());
        for uri in &doc.redirect_uris {
            assert!(redirect::check_registrable(uri, redirect::ClientType::Public).is_ok());
        }
    }
    for bytes in [data, body] {
        if let Ok(checked) = crate::oauth::register::check(bytes, 8 * 1024) {
            assert!(!checked.redirect_uris.is_empty());
            let client_type = if checked.method == "none" {
                redirect::ClientType::Public
            } else {
                redirect::ClientType::Confidential
            };
            for uri in &checked.redirect_uris {
                assert!(redirect::check_registrable(uri, client_type).is_ok());
            }
        }
    }
    let _ = scopes::grantable(Some(&client_id));
}

fn key_ring() -> SecretBox {
    let keys = [
        ("k1".to_owned(), Zeroizing::new([1u8; 32])),
        ("k2".to_owned(), Zeroizing::new([2u8; 32])),
    ];
    SecretBox::new("k2", keys).unwrap_or_else(|e| panic!("test key ring: {e}"))
}

/// Sealed envelopes: whatever is presented as one is refused cleanly unless it was sealed
/// for that place; what is sealed opens to the same bytes, and only at its place.
pub fn sealed(data: &[u8]) {
    let ring = key_ring();
    let place = Place::new("t", "c", "r");
    let _ = SecretBox::key_id_of(data);
    if let Ok(plain) = ring.open(data, &place) {
        // Only a real envelope opens; re-sealing it must give the same plaintext back.
        if let Ok(Some(resealed)) = ring.reseal(data, &place) {
            assert_eq!(
                ring.open(&resealed, &place)
                    .ok()
                    .as_deref()
                    .map(Vec::as_slice),
                Some(plain.as_slice())
            );
        }
    }
    let sealed = ring
        .seal(data, &place)
        .unwrap_or_else(|e| panic!("sealing failed: {e}"));
    assert_eq!(
        ring.open(&sealed, &place)
            .ok()
            .as_deref()
            .map(Vec::as_slice),
        Some(data)
    );
    assert!(ring.open(&sealed, &Place::new("t", "c", "other")).is_err());
    assert_eq!(SecretBox::key_id_of(&sealed), Ok("k2"));
    assert_eq!(ring.reseal(&sealed, &place), Ok(None));
}

/// Client-facing session ids: any header value opens for nobody but the user and upstream
/// it was sealed for.
pub fn session_id(data: &[u8]) {
    let ids = SessionIds::new(Arc::new(key_ring()));
    let _ = ids.open("alice", "up", data);
    if let Some(sid) = ids.seal("alice", "up", data) {
        assert!(sid.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{sid}");
        assert_eq!(ids.open("alice", "up", sid.as_bytes()).as_deref(), Ok(data));
        assert!(ids.open("bob", "up", sid.as_bytes()).is_err());
        assert!(ids.open("alice", "other", sid.as_bytes()).is_err());
    }
}

/// Redirect URIs: the requested one on the first line, the registered one after it.
pub fn redirect_uri(data: &[u8]) {
    let (requested, rest) = two_parts(data);
    let registered = String::from_utf8_lossy(rest).into_owned();
    for client in [
        redirect::ClientType::Public,
        redirect::ClientType::Confidential,
    ] {
        let _ = redirect::check_registrable(&requested, client);
        let _ = redirect::check_registrable(&registered, client);
    }
    // A URI matches itself; a different one only as a loopback http URI.
    assert!(redirect::matches(
        &requested,
        std::slice::from_ref(&requested)
    ));
    if requested != registered && redirect::matches(&requested, std::slice::from_ref(&registered)) {
        let scheme = url::Url::parse(&requested).map(|u| u.scheme().to_owned());
        assert_eq!(
            scheme.as_deref(),
            Ok("http"),
            "{requested:?} ~ {registered:?}"
        );
        assert!(redirect::all_loopback(std::slice::from_ref(&registered)));
    }
    let _ = redirect::host_of(&requested);
}

/// The config loader: a TOML file through figment, extraction and [`Config::validate`].
pub fn config(data: &[u8]) {
    crate::tls::ensure_provider();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let figment = Figment::new().merge(Toml::string(text));
    if let Ok(config) = Config::from_figment(figment) {
        assert!(config.validate().is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays every committed corpus input through its target (the fuzz runs keep them).
    #[test]
    fn the_fuzz_corpora_replay_without_a_finding() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            assert!(!entries.is_empty(), "{} is empty", dir.display());
            for entry in entries {
                let data = std::fs::read(entry.path()).unwrap();
                target(&data);
            }
        }
    }
}
