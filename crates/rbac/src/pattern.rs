//! Name patterns: `*` matches any run of characters (including none), `?` exactly one
//! character, everything else itself (case-sensitive); `\*`, `\?` and `\\` are the literal
//! characters.
//!
//! A pattern is parsed once at load time. Matching never allocates and never backtracks
//! across stars: the pattern is split at its stars into fixed-length segments; the first is
//! anchored at the start, the last at the end, and each one between is taken at its leftmost
//! occurrence. Leftmost is always safe because every segment has a fixed length in characters,
//! so an earlier match leaves at least as much room for the rest. The cost is at most
//! O(text × pattern), whatever the pattern (`a*a*a*a*b` included).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PolicyError;

/// A compiled name pattern. See the module docs for the syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: Box<str>,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// `*`
    Any,
    Exact(Box<str>),
    /// `abc*`
    Prefix(Box<str>),
    /// `*abc`
    Suffix(Box<str>),
    /// `*abc*`
    Contains(Box<str>),
    /// No star but at least one `?`: the whole text is one segment.
    Whole(Segment),
    Glob {
        first: Segment,
        middle: Box<[Segment]>,
        last: Segment,
    },
}

/// Literals and `?`s between two stars.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Segment {
    pieces: Box<[Piece]>,
    /// Length in characters (each `?` counts one).
    chars: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(Box<str>),
    One,
}

#[derive(Debug, PartialEq)]
enum Token {
    Char(char),
    One,
    Star,
}

impl Pattern {
    /// Parses a pattern. Empty patterns, patterns padded with whitespace, control characters
    /// and unknown escapes are errors.
    pub fn parse(source: &str) -> Result<Pattern, PolicyError> {
        if source.is_empty() {
            return Err(PolicyError::EmptyPattern);
        }
        if source.trim() != source {
            return Err(PolicyError::PatternWhitespace {
                pattern: source.to_owned(),
            });
        }
        if source.chars().any(char::is_control) {
            return Err(PolicyError::PatternControl {
                pattern: source.to_owned(),
            });
        }
        let tokens = tokenize(source)?;
        Ok(Pattern {
            source: source.into(),
            kind: classify(&tokens),
        })
    }

    /// The pattern matching every name, including the empty one.
    pub fn any() -> Pattern {
        Pattern {
            source: "*".into(),
            kind: Kind::Any,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether this pattern matches every name.
    pub fn is_any(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(s) => text == &**s,
            Kind::Prefix(s) => text.starts_with(&**s),
            Kind::Suffix(s) => text.ends_with(&**s),
            Kind::Contains(s) => text.contains(&**s),
            Kind::Whole(seg) => seg.match_at(text, 0) == Some(text.len()),
            Kind::Glob {
                first,
                middle,
                last,
            } => glob_match(first, middle, last, text),
        }
    }
}

fn tokenize(source: &str) -> Result<Vec<Token>, PolicyError> {
    let mut tokens = Vec::with_capacity(source.len());
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        let token = match c {
            '*' => Token::Star,
            '?' => Token::One,
            '\\' => match chars.next() {
                Some(e @ ('*' | '?' | '\\')) => Token::Char(e),
                Some(found) => {
                    return Err(PolicyError::UnknownEscape {
                        pattern: source.to_owned(),
                        found,
                    });
                }
                None => {
                    return Err(PolicyError::TrailingEscape {
                        pattern: source.to_owned(),
                    });
                }
            },
            c => Token::Char(c),
        };
        // `**` means the same as `*`.
        if !(token == Token::Star && tokens.last() == Some(&Token::Star)) {
            tokens.push(token);
        }
    }
    Ok(tokens)
}

fn classify(tokens: &[Token]) -> Kind {
    let parts: Vec<Segment> = tokens.split(|t| *t == Token::Star).map(segment).collect();
    let literal = |seg: &Segment| -> Option<Box<str>> {
        match &*seg.pieces {
            [] => Some("".into()),
            [Piece::Lit(s)] => Some(s.clone()),
            _ => None,
        }
    };
    match parts.as_slice() {
        [only] => match literal(only) {
            Some(s) => Kind::Exact(s),
            None => Kind::Whole(only.clone()),
        },
        [a, b] if a.chars == 0 && b.chars == 0 => Kind::Any,
        [a, b] if b.chars == 0 && literal(a).is_some() => {
            Kind::Prefix(literal(a).unwrap_or_default())
        }
        [a, b] if a.chars == 0 && literal(b).is_some() => {
            Kind::Suffix(literal(b).unwrap_or_default())
        }
        [a, m, b] if a.chars == 0 && b.chars == 0 && literal(m).is_some() => {
            Kind::Contains(literal(m).unwrap_or_default())
        }
        [first, middle @ .., last] => Kind::Glob {
            first: first.clone(),
            middle: middle.iter().filter(|s| s.chars > 0).cloned().collect(),
            last: last.clone(),
        },
        // `split` always yields at least one part.
        [] => Kind::Any,
    }
}

fn segment(tokens: &[Token]) -> Segment {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = 0;
    for t in tokens {
        chars += 1;
        match t {
            Token::Char(c) => lit.push(*c),
            Token::One => {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit).into()));
                }
                pieces.push(Piece::One);
            }
            Token::Star => {}
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit.into()));
    }
    Segment {
        pieces: pieces.into(),
        chars,
    }
}

impl Segment {
    /// Matches the segment at byte offset `at`; returns the byte offset just after it.
    fn match_at(&self, text: &str, at: usize) -> Option<usize> {
        let mut pos = at;
        for piece in &*self.pieces {
            let rest = text.get(pos..)?;
            match piece {
                Piece::Lit(s) if rest.starts_with(&**s) => pos += s.len(),
                Piece::Lit(_) => return None,
                Piece::One => pos += rest.chars().next()?.len_utf8(),
            }
        }
        Some(pos)
    }

    /// The leftmost match starting at or after `from`: (start, end).
    fn find(&self, text: &str, from: usize) -> Option<(usize, usize)> {
        let rest = text.get(from..)?;
        // Jump straight to candidate positions when the segment starts with a literal.
        if let Some(Piece::Lit(lead)) = self.pieces.first() {
            let mut base = from;
            let mut hay = rest;
            while let Some(i) = hay.find(&**lead) {
                let start = base + i;
                if let Some(end) = self.match_at(text, start) {
                    return Some((start, end));
                }
                let step = hay[i..].chars().next().map_or(1, char::len_utf8);
                base = start + step;
                hay = text.get(base..)?;
            }
            return None;
        }
        for (i, _) in rest.char_indices() {
            if let Some(end) = self.match_at(text, from + i) {
                return Some((from + i, end));
            }
        }
        None
    }
}

fn glob_match(first: &Segment, middle: &[Segment], last: &Segment, text: &str) -> bool {
    let Some(mut pos) = first.match_at(text, 0) else {
        return false;
    };
    for seg in middle {
        match seg.find(text, pos) {
            Some((_, end)) => pos = end,
            None => return false,
        }
    }
    // The last segment is anchored at the end: it starts `last.chars` characters before it.
    let start = if last.chars == 0 {
        text.len()
    } else {
        match text.char_indices().rev().nth(last.chars - 1) {
            Some((i, _)) => i,
            None => return false,
        }
    };
    start >= pos && last.match_at(text, start) == Some(text.len())
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Pattern::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Pattern::parse(p).unwrap().matches(t)
    }

    #[test]
    fn exact_is_case_sensitive() {
        assert!(m("github", "github"));
        assert!(!m("github", "GitHub"));
        assert!(!m("github", "github2"));
        assert!(!m("github", "githu"));
    }

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("search_*", "search_"));
        assert!(m("search_*", "search_issues"));
        assert!(!m("search_*", "searc"));
        assert!(m("*_issue", "create_issue"));
        assert!(!m("*_issue", "create_issues"));
        assert!(m("*issue*", "issue"));
        assert!(m("*issue*", "list_issues_now"));
        assert!(!m("*issue*", "isue"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a-b-b-c"));
        assert!(!m("a*b*c", "a-c-b"));
        assert!(m("**", "x"));
        assert!(m("a**b", "ab"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(m("v?", "v1"));
        assert!(!m("v?", "v"));
        assert!(!m("v?", "v12"));
        assert!(m("??", "éa"));
        assert!(!m("?", "éa"));
        assert!(m("a?c*", "abcdef"));
        assert!(m("*?b", "ab"));
        assert!(!m("*?b", "b"));
        assert!(m("*é?", "xéy"));
        assert!(m("a*?", "ab"));
        assert!(!m("a*?", "a"));
        assert!(m("*a?c*x?", "zzabcqqxé"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(m(r"what\?", "what?"));
        assert!(!m(r"what\?", "whats"));
        assert!(m(r"a\*", "a*"));
        assert!(!m(r"a\*", "ab"));
        assert!(m(r"a\\b", r"a\b"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert_eq!(Pattern::parse(""), Err(PolicyError::EmptyPattern));
        assert!(matches!(
            Pattern::parse(" github"),
            Err(PolicyError::PatternWhitespace { .. })
        ));
        assert!(matches!(
            Pattern::parse("a\\"),
            Err(PolicyError::TrailingEscape { .. })
        ));
        assert!(matches!(
            Pattern::parse("a\\n"),
            Err(PolicyError::UnknownEscape { found: 'n', .. })
        ));
        assert!(matches!(
            Pattern::parse("a\tb"),
            Err(PolicyError::PatternControl { .. })
        ));
    }

    #[test]
    fn adversarial_pattern_is_not_exponential() {
        let text = "a".repeat(20_000);
        let p = Pattern::parse("a*a*a*a*a*a*a*a*a*a*b").unwrap();
        let start = std::time::Instant::now();
        assert!(!p.matches(&text));
        let q = Pattern::parse("*a?a*a?a*a*a*?b*").unwrap();
        assert!(!q.matches(&text));
        assert!(Pattern::parse("a*a*a*a*b").unwrap().matches("aaaab"));
        // Exponential backtracking would take ages; linear work takes well under a second
        // even in a debug build on a busy machine.
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn agrees_with_a_reference_matcher() {
        // A slow, obviously-correct recursive matcher over chars.
        fn reference(p: &[char], t: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
                Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
                Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
            }
        }
        let alphabet = ['a', 'b', 'é'];
        let pats = [
            "a", "*", "a*", "*a", "*a*", "a*b", "?", "a?", "?*", "*?", "a*?b", "*a?b*", "a*b*a",
            "??*b", "*é*a", "a**b?", "?a*", "*b?",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let next: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(next);
        }
        for p in pats {
            let compiled = Pattern::parse(p).unwrap();
            let pc: Vec<char> = p.chars().collect();
            for t in &texts {
                let tc: Vec<char> = t.chars().collect();
                assert_eq!(
                    compiled.matches(t),
                    reference(&pc, &tc),
                    "pattern {p:?} text {t:?}"
                );
            }
        }
    }

    #[test]
    fn serde_round_trips_the_source() {
        let p: Pattern = serde_json::from_str("\"gh-*\"").unwrap();
        assert!(p.matches("gh-1"));
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"gh-*\"");
        assert!(serde_json::from_str::<Pattern>("\"\"").is_err());
    }
}
