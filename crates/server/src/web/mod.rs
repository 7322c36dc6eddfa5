//! What people see in a browser: the sign-in page, sign-out, and the session cookie.

pub mod consent;
pub mod csrf;
pub mod login;
pub mod pages;
pub mod session;

/// A `return_to` that stays on this site: a path starting with one `/`. Anything else (an
/// absolute URL, `//host`, `/\host`, control characters) becomes `/`: no open redirect.
pub fn safe_return_to(value: Option<&str>) -> String {
    match value {
        Some(v)
            if v.starts_with('/')
                && !v.starts_with("//")
                && !v.starts_with("/\\")
                && !v.chars().any(|c| c.is_control() || c == '\\') =>
        {
            v.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn only_same_origin_paths() {
        assert_eq!(
            safe_return_to(Some("/oauth/authorize?x=1")),
            "/oauth/authorize?x=1"
        );
        for bad in [
            "https://evil.example/x",
            "//evil.example/x",
            "/\\evil.example",
            "evil",
            "/ok\r\nSet-Cookie: x",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
