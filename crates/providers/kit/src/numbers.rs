//! Numbers that providers send as JSON numbers or as numeric strings (GitHub's 2020 beta sent
//! `"expires_in": "28800"`; Salesforce sends `issued_at` as a string).

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Int(i64),
    Float(f64),
    Text(String),
}

/// `#[serde(default, deserialize_with = "lenient_seconds")]`: a number, a numeric string, or
/// absent/null (`None`: unknown, never a guessed default).
pub fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<NumberOrString>::deserialize(d)?;
    match value {
        None => Ok(None),
        Some(NumberOrString::Int(n)) => Ok(Some(n)),
        // Truncation is intended: sub-second precision does not matter for expiry.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "seconds, truncated on purpose"
        )]
        Some(NumberOrString::Float(f)) if f.is_finite() => Ok(Some(f as i64)),
        Some(NumberOrString::Float(_)) => Err(serde::de::Error::custom("not a finite number")),
        Some(NumberOrString::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(NumberOrString::Text(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a whole number"))),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::lenient_seconds")]
        n: Option<i64>,
    }

    fn parse(json: &str) -> Result<Option<i64>, serde_json::Error> {
        serde_json::from_str::<T>(json).map(|t| t.n)
    }

    #[test]
    fn numbers_and_numeric_strings() {
        assert_eq!(parse(r#"{"n": 3600}"#).ok(), Some(Some(3600)));
        assert_eq!(parse(r#"{"n": "3600"}"#).ok(), Some(Some(3600)));
        assert_eq!(parse(r#"{"n": " 28800 "}"#).ok(), Some(Some(28800)));
        assert_eq!(parse(r#"{"n": 3599.9}"#).ok(), Some(Some(3599)));
    }

    #[test]
    fn missing_means_unknown_not_an_hour() {
        assert_eq!(parse(r#"{}"#).ok(), Some(None));
        assert_eq!(parse(r#"{"n": null}"#).ok(), Some(None));
        assert_eq!(parse(r#"{"n": ""}"#).ok(), Some(None));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(r#"{"n": "soon"}"#).is_err());
        assert!(parse(r#"{"n": true}"#).is_err());
    }
}
