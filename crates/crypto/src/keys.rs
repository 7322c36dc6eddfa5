//! Key material for the sealing key ring.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::CryptoError;

/// Length of a sealing key in bytes (XChaCha20-Poly1305).
pub const KEY_LEN: usize = 32;

/// Fills an array from the operating system's random number generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(buf)
}

/// A fresh sealing key, base64-encoded as it appears in configuration.
pub fn generate_key_b64() -> Result<String, CryptoError> {
    Ok(STANDARD.encode(random_bytes::<KEY_LEN>()?))
}

/// Decodes a configured key, checking its length.
pub fn decode_key_b64(encoded: &str) -> Result<[u8; KEY_LEN], String> {
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|e| format!("not valid base64: {e}"))?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "must decode to {KEY_LEN} bytes, got {} (generate one with `mcpgate keys generate`)",
            bytes.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_decode_and_differ() {
        let a = generate_key_b64().unwrap_or_default();
        let b = generate_key_b64().unwrap_or_default();
        assert_ne!(a, b);
        assert!(decode_key_b64(&a).is_ok());
    }

    #[test]
    fn wrong_lengths_are_named() {
        let short = STANDARD.encode([0u8; 16]);
        let err = decode_key_b64(&short).err().unwrap_or_default();
        assert!(err.contains("got 16"), "{err}");
        assert!(decode_key_b64("***").is_err());
    }
}
