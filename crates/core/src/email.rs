//! Email addresses as account identities: the one key every spelling of an address shares.

use unicode_normalization::UnicodeNormalization;

/// The lookup and uniqueness key of an email address: NFKC-normalised, lower-cased and
/// trimmed. Two addresses a person cannot tell apart get the same key: composed and
/// decomposed accents (`ë` and `e` + U+0308), full-width or ligature forms, letter case.
///
/// Lower-casing, not full case folding: RFC 8265 §3.3.1 (PRECIS usernames) maps case with
/// `toLowerCase` because folding also merges addresses that are different to their owners
/// (`ß` and `ss`). Lower-casing can leave text that is not in NFKC (a final sigma, say), so
/// NFKC runs again, which makes the key idempotent: `normalize(normalize(x)) == normalize(x)`.
pub fn normalize(email: &str) -> String {
    let lowered = email.nfkc().collect::<String>().to_lowercase();
    lowered.nfkc().collect::<String>().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spellings_a_person_cannot_tell_apart_share_a_key() {
        let key = normalize("zo\u{eb}@example.com");
        for same in [
            "zoe\u{308}@example.com",
            "ZOE\u{308}@EXAMPLE.COM",
            "ZO\u{cb}@Example.com",
            "\u{ff5a}\u{ff4f}\u{eb}@\u{ff45}xample.com",
            "  zo\u{eb}@example.com\u{3000}",
        ] {
            assert_eq!(normalize(same), key, "{same:?}");
        }
        assert_eq!(normalize("Ada@Example.COM "), "ada@example.com");
    }

    #[test]
    fn different_addresses_stay_different_and_keys_are_stable() {
        assert_ne!(
            normalize("stra\u{df}e@example.de"),
            normalize("strasse@example.de")
        );
        assert_ne!(
            normalize("zoe@example.com"),
            normalize("zo\u{eb}@example.com")
        );
        for s in [
            "\u{3a3}\u{391}\u{3a3}@x.gr",
            "\u{fb01}le@x.com",
            "\u{212b}@x.se",
        ] {
            let once = normalize(s);
            assert_eq!(normalize(&once), once, "{s:?}");
        }
    }
}
