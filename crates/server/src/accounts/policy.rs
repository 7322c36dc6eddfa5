//! What a password and an email must look like, checked before any hashing.

/// At least this many characters (NIST SP 800-63B asks for 8+; we ask for 12).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// At most this many bytes: longer is refused before hashing, so nobody can make a hash
/// cost more than a normal one.
pub const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_EMAIL_BYTES: usize = 320;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("not a valid email address")]
    BadEmail,
}

pub fn check_new_password(password: &str) -> Result<(), PolicyError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PolicyError::PasswordTooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PolicyError::PasswordTooShort);
    }
    Ok(())
}

/// For a sign-in attempt: only the upper bound matters (a short wrong password is just wrong).
pub fn check_presented_password(password: &str) -> Result<(), PolicyError> {
    if password.len() > MAX_PASSWORD_BYTES {
        Err(PolicyError::PasswordTooLong)
    } else {
        Ok(())
    }
}

/// A pragmatic check: one `@`, something on both sides, a dot in the domain, no spaces.
pub fn check_email(email: &str) -> Result<(), PolicyError> {
    let email = email.trim();
    let ok = email.len() <= MAX_EMAIL_BYTES
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(())
    } else {
        Err(PolicyError::BadEmail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        assert_eq!(
            check_new_password("short"),
            Err(PolicyError::PasswordTooShort)
        );
        assert_eq!(check_new_password("twelve chars"), Ok(()));
        // Characters, not bytes: twelve multi-byte characters are enough.
        assert_eq!(
            check_new_password("ééééééééééé"),
            Err(PolicyError::PasswordTooShort)
        );
        assert_eq!(check_new_password("éééééééééééé"), Ok(()));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(check_new_password(&long), Err(PolicyError::PasswordTooLong));
        assert_eq!(
            check_presented_password(&long),
            Err(PolicyError::PasswordTooLong)
        );
        assert_eq!(check_presented_password("x"), Ok(()));
    }

    #[test]
    fn emails() {
        assert_eq!(check_email(" Ada@Example.com "), Ok(()));
        for bad in [
            "",
            "ada",
            "@x.com",
            "ada@",
            "ada@x",
            "a b@x.com",
            "a@b@x.com",
            "a@.x.com",
        ] {
            assert_eq!(check_email(bad), Err(PolicyError::BadEmail), "{bad:?}");
        }
    }
}
