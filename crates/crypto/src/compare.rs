//! Constant-time comparison for secrets (client secrets, token hashes, PKCE challenges).

use subtle::ConstantTimeEq;

/// `true` when `a == b`, in time that depends only on the lengths, never on where the inputs
/// first differ. Lengths are not secret here (tokens and digests have fixed sizes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_unequal_and_different_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
