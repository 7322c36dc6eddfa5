//! TLS for outgoing HTTPS (client metadata documents, upstreams, identity providers): rustls
//! with the ring provider, installed once before any HTTP client is built.

use std::sync::Once;

pub fn ensure_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only if another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
