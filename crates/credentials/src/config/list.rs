//! The `credentials` value of an upstream: one table or a list.
//!
//! Deserializing never fails on a bad entry: each entry that does not parse (unknown `kind`,
//! unknown key, wrong type) is kept as a problem, so [`UpstreamCredentialsConfig::validate`]
//! reports it together with every other problem of the config, each with its key path.

use std::fmt;

use mcpgate_core::FieldError;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::CredentialsConfig;

/// An upstream's `credentials`: one table or a list; absent means `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCredentialsConfig {
    entries: Vec<Entry>,
    list: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Valid(Box<CredentialsConfig>),
    /// What the entry failed to parse with (the serde message names the key, not a value).
    Invalid(String),
}

impl Default for UpstreamCredentialsConfig {
    fn default() -> Self {
        Self::one(CredentialsConfig::None)
    }
}

impl UpstreamCredentialsConfig {
    pub fn one(config: CredentialsConfig) -> Self {
        Self {
            entries: vec![Entry::Valid(Box::new(config))],
            list: false,
        }
    }

    pub fn list(configs: impl IntoIterator<Item = CredentialsConfig>) -> Self {
        Self {
            entries: configs
                .into_iter()
                .map(|c| Entry::Valid(Box::new(c)))
                .collect(),
            list: true,
        }
    }

    /// The entries that parsed.
    pub fn entries(&self) -> impl Iterator<Item = &CredentialsConfig> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Valid(c) => Some(c.as_ref()),
            Entry::Invalid(_) => None,
        })
    }

    /// The key path of entry `i` under `path`: `path[i]` for a list, `path` for one table.
    pub fn entry_path(&self, path: &str, i: usize) -> String {
        if self.list {
            format!("{path}[{i}]")
        } else {
            path.to_owned()
        }
    }

    /// Every problem at once, with paths under `path` (e.g. `upstreams[0].credentials`):
    /// entries that did not parse, each entry's own problems, and combinations that cannot
    /// work (`none` with others, two SigV4 signers, two kinds setting one header).
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.entries.is_empty() {
            errors.push(FieldError::new(
                path,
                "an empty list: use kind = \"none\" for no credentials",
            ));
        }
        let mut headers: Vec<(String, usize)> = Vec::new();
        for (i, entry) in self.entries.iter().enumerate() {
            let at = self.entry_path(path, i);
            match entry {
                Entry::Invalid(message) => errors.push(FieldError::new(at, message.clone())),
                Entry::Valid(config) => {
                    errors.extend(config.validate(&at));
                    if matches!(**config, CredentialsConfig::None) && self.entries.len() > 1 {
                        errors.push(FieldError::new(
                            at.clone(),
                            "kind = \"none\" cannot be combined with other kinds",
                        ));
                    }
                    if let Some(h) = config.header() {
                        if let Some((_, first)) = headers.iter().find(|(n, _)| *n == h) {
                            errors.push(FieldError::new(
                                at.clone(),
                                format!(
                                    "sets header {h:?}, already set by {}",
                                    self.entry_path(path, *first)
                                ),
                            ));
                        } else {
                            headers.push((h, i));
                        }
                    }
                }
            }
        }
        errors
    }
}

impl<'de> Deserialize<'de> for UpstreamCredentialsConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OneOrMany)
    }
}

/// Parses one entry leniently: a bad entry becomes [`Entry::Invalid`].
fn entry(value: serde_json::Value) -> Entry {
    match serde_json::from_value::<CredentialsConfig>(value) {
        Ok(c) => Entry::Valid(Box::new(c)),
        Err(e) => Entry::Invalid(e.to_string()),
    }
}

struct OneOrMany;

impl<'de> Visitor<'de> for OneOrMany {
    type Value = UpstreamCredentialsConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a credentials table with a `kind`, or a list of them")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(UpstreamCredentialsConfig {
            entries: vec![entry(value)],
            list: false,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let values = Vec::<serde_json::Value>::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(UpstreamCredentialsConfig {
            entries: values.into_iter().map(entry).collect(),
            list: true,
        })
    }
}

impl Serialize for UpstreamCredentialsConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Shown<'a> {
            Valid(&'a CredentialsConfig),
            Invalid { invalid: &'a str },
        }
        let shown: Vec<Shown<'_>> = self
            .entries
            .iter()
            .map(|e| match e {
                Entry::Valid(c) => Shown::Valid(c.as_ref()),
                Entry::Invalid(m) => Shown::Invalid { invalid: m },
            })
            .collect();
        match (self.list, shown.as_slice()) {
            (false, [one]) => one.serialize(serializer),
            _ => shown.serialize(serializer),
        }
    }
}
