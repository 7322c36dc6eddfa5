//! `SecretBox`: secrets at rest, sealed with XChaCha20-Poly1305 under a key ring.
//!
//! Keys are decoded once when the box is built — no key derivation per call, so sealing and
//! opening cost microseconds and run inline on the async runtime.
//!
//! Envelope (all lengths in bytes):
//! `version (1) | key id length (1) | key id | place tag (8) | nonce (24) | ciphertext + tag`.
//! The associated data is the whole header plus the full place (table, column, row id), so a
//! sealed value moved to another row, or a header edited, fails to open. The place tag (a
//! truncated SHA-256 of the place) only lets `open` say "wrong place" instead of "tampered".

use std::collections::BTreeMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::keys::{KEY_LEN, random_bytes};

const VERSION: u8 = 1;
const PLACE_TAG_LEN: usize = 8;
const NONCE_LEN: usize = 24;

/// Where a sealed value lives. It is bound into the ciphertext: the value opens only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row: &'a str,
}

impl<'a> Place<'a> {
    pub fn new(table: &'a str, column: &'a str, row: &'a str) -> Self {
        Self { table, column, row }
    }

    fn encode(&self) -> Vec<u8> {
        // Length-prefixed, so ("a:b", "c") and ("a", "b:c") differ.
        let mut out =
            Vec::with_capacity(self.table.len() + self.column.len() + self.row.len() + 24);
        for part in [self.table, self.column, self.row] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }

    fn tag(&self) -> [u8; PLACE_TAG_LEN] {
        let digest = Sha256::digest(self.encode());
        let mut tag = [0u8; PLACE_TAG_LEN];
        tag.copy_from_slice(&digest[..PLACE_TAG_LEN]);
        tag
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the key ring is empty or its active key {0:?} is not in it")]
    NoActiveKey(String),
    #[error("key id {0:?} must be 1 to 255 bytes")]
    BadKeyId(String),
    #[error("sealed with key {0:?}, which is not in the key ring")]
    UnknownKey(String),
    #[error("the sealed value belongs to another place (table, column or row)")]
    WrongPlace,
    #[error("the sealed value was tampered with or sealed under a different key")]
    Tampered,
    #[error("not a sealed value (truncated or unknown envelope version)")]
    Malformed,
    #[error("the random number generator failed: {0}")]
    Random(String),
}

/// A key ring: every key can open, the active one seals. Cheap to share behind an `Arc`.
pub struct SecretBox {
    active: String,
    ciphers: BTreeMap<String, XChaCha20Poly1305>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("active", &self.active)
            .field("key_ids", &self.ciphers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretBox {
    /// Builds the ring from `(key id, 32-byte key)` pairs; `active` must be one of them.
    pub fn new(
        active: &str,
        keys: impl IntoIterator<Item = (String, Zeroizing<[u8; KEY_LEN]>)>,
    ) -> Result<Self, SealError> {
        let mut ciphers = BTreeMap::new();
        for (id, key) in keys {
            if id.is_empty() || id.len() > 255 {
                return Err(SealError::BadKeyId(id));
            }
            let key = Key::from(*key);
            ciphers.insert(id, XChaCha20Poly1305::new(&key));
        }
        if !ciphers.contains_key(active) {
            return Err(SealError::NoActiveKey(active.to_owned()));
        }
        Ok(Self {
            active: active.to_owned(),
            ciphers,
        })
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// The ids of every key in the ring.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.ciphers.keys().map(String::as_str)
    }

    /// Seals `plaintext` for `place` under the active key.
    pub fn seal(&self, plaintext: &[u8], place: &Place<'_>) -> Result<Vec<u8>, SealError> {
        let cipher = self
            .ciphers
            .get(&self.active)
            .ok_or_else(|| SealError::NoActiveKey(self.active.clone()))?;
        let nonce = random_bytes::<NONCE_LEN>().map_err(|e| SealError::Random(e.to_string()))?;
        let mut out = Vec::with_capacity(
            2 + self.active.len() + PLACE_TAG_LEN + NONCE_LEN + plaintext.len() + 16,
        );
        out.push(VERSION);
        out.push(self.active.len() as u8);
        out.extend_from_slice(self.active.as_bytes());
        out.extend_from_slice(&place.tag());
        out.extend_from_slice(&nonce);
        let aad = associated_data(&out, place);
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Tampered)?;
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a value sealed for `place` by any key in the ring.
    pub fn open(&self, sealed: &[u8], place: &Place<'_>) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let envelope = Envelope::parse(sealed)?;
        let cipher = self
            .ciphers
            .get(envelope.key_id)
            .ok_or_else(|| SealError::UnknownKey(envelope.key_id.to_owned()))?;
        if envelope.place_tag != place.tag() {
            return Err(SealError::WrongPlace);
        }
        let aad = associated_data(envelope.header, place);
        cipher
            .decrypt(
                &XNonce::from(envelope.nonce),
                Payload {
                    msg: envelope.ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Tampered)
    }

    /// For key rotation: re-seals a value under the active key. `None` when it already is.
    pub fn reseal(&self, sealed: &[u8], place: &Place<'_>) -> Result<Option<Vec<u8>>, SealError> {
        if Envelope::parse(sealed)?.key_id == self.active {
            return Ok(None);
        }
        let plaintext = self.open(sealed, place)?;
        self.seal(&plaintext, place).map(Some)
    }

    /// The id of the key a value was sealed with.
    pub fn key_id_of(sealed: &[u8]) -> Result<&str, SealError> {
        Envelope::parse(sealed).map(|e| e.key_id)
    }
}

fn associated_data(header: &[u8], place: &Place<'_>) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&place.encode());
    aad
}

struct Envelope<'a> {
    header: &'a [u8],
    key_id: &'a str,
    place_tag: [u8; PLACE_TAG_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

impl<'a> Envelope<'a> {
    fn parse(sealed: &'a [u8]) -> Result<Self, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::Malformed)?;
        if version != VERSION {
            return Err(SealError::Malformed);
        }
        let (&id_len, rest) = rest.split_first().ok_or(SealError::Malformed)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + PLACE_TAG_LEN + NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len);
        let key_id = std::str::from_utf8(id).map_err(|_| SealError::Malformed)?;
        let (tag, rest) = rest.split_at(PLACE_TAG_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let header_len = 2 + id_len + PLACE_TAG_LEN + NONCE_LEN;
        Ok(Self {
            header: &sealed[..header_len],
            key_id,
            place_tag: tag.try_into().map_err(|_| SealError::Malformed)?,
            nonce: nonce.try_into().map_err(|_| SealError::Malformed)?,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new([byte; KEY_LEN])
    }

    fn ring(active: &str, ids: &[(&str, u8)]) -> SecretBox {
        SecretBox::new(
            active,
            ids.iter().map(|(id, b)| ((*id).to_owned(), key(*b))),
        )
        .unwrap_or_else(|e| panic!("ring: {e}"))
    }

    const HERE: Place<'static> = Place {
        table: "provider_grants",
        column: "refresh_token",
        row: "row-1",
    };

    #[test]
    fn round_trip() -> Result<(), SealError> {
        let b = ring("a", &[("a", 1)]);
        let sealed = b.seal(b"refresh-token-value", &HERE)?;
        assert_ne!(&sealed[..], b"refresh-token-value");
        assert_eq!(&b.open(&sealed, &HERE)?[..], b"refresh-token-value");
        // Fresh nonce every time.
        assert_ne!(b.seal(b"x", &HERE)?, b.seal(b"x", &HERE)?);
        Ok(())
    }

    #[test]
    fn each_failure_has_its_own_error() -> Result<(), SealError> {
        let b = ring("a", &[("a", 1)]);
        let sealed = b.seal(b"secret", &HERE)?;

        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(b.open(&tampered, &HERE).err(), Some(SealError::Tampered));

        let elsewhere = Place::new("provider_grants", "refresh_token", "row-2");
        assert_eq!(
            b.open(&sealed, &elsewhere).err(),
            Some(SealError::WrongPlace)
        );

        // Forging the place tag to match does not help: the place is in the AAD.
        let mut forged = sealed.clone();
        forged[3..3 + PLACE_TAG_LEN].copy_from_slice(&elsewhere.tag());
        assert_eq!(b.open(&forged, &elsewhere).err(), Some(SealError::Tampered));

        let other = ring("b", &[("b", 2)]);
        assert_eq!(
            other.open(&sealed, &HERE).err(),
            Some(SealError::UnknownKey("a".into()))
        );
        assert_eq!(
            b.open(&sealed[..10], &HERE).err(),
            Some(SealError::Malformed)
        );
        assert_eq!(b.open(b"", &HERE).err(), Some(SealError::Malformed));
        Ok(())
    }

    #[test]
    fn rotation_keeps_old_values_open_and_reseal_moves_them() -> Result<(), SealError> {
        let old = ring("a", &[("a", 1)]);
        let sealed = old.seal(b"v", &HERE)?;
        let rotated = ring("b", &[("a", 1), ("b", 2)]);
        assert_eq!(&rotated.open(&sealed, &HERE)?[..], b"v");
        let moved = rotated.reseal(&sealed, &HERE)?.unwrap_or_default();
        assert_eq!(SecretBox::key_id_of(&moved)?, "b");
        assert_eq!(&rotated.open(&moved, &HERE)?[..], b"v");
        assert_eq!(rotated.reseal(&moved, &HERE)?, None);
        // Once every value moved, the old key can go.
        let only_new = ring("b", &[("b", 2)]);
        assert_eq!(&only_new.open(&moved, &HERE)?[..], b"v");
        Ok(())
    }

    #[test]
    fn ring_must_contain_its_active_key() {
        let err = SecretBox::new("z", [("a".to_owned(), key(1))]).err();
        assert_eq!(err, Some(SealError::NoActiveKey("z".into())));
    }
}
