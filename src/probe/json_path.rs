//! The JSONPath subset health checks use: a `$` root followed by `.name`, `['name']`,
//! `["name"]` and `[index]` steps (negative indices count from the end). Wildcards, recursive
//! descent and filters are rejected: a health assertion names exactly one value.

use std::fmt;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// An object member.
    Key(String),
    /// An array element; negative counts from the end (`-1` is the last).
    Index(i64),
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

/// Why a path could not be parsed; the message follows `<field>: `.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath {path:?} at character {position}: {reason}")]
pub struct JsonPathError {
    path: String,
    position: usize,
    reason: &'static str,
}

impl JsonPath {
    /// Parses `$`, `$.services.database`, `$['ai providers'][0]`, ….
    pub fn parse(text: &str) -> Result<Self, JsonPathError> {
        let fail = |position: usize, reason: &'static str| JsonPathError {
            path: text.to_string(),
            position,
            reason,
        };
        let chars: Vec<char> = text.chars().collect();
        if chars.first() != Some(&'$') {
            return Err(fail(0, "must start with $"));
        }
        let mut segments = Vec::new();
        let mut i = 1;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && is_name_char(chars[end]) {
                        end += 1;
                    }
                    if end == start {
                        return Err(fail(
                            start,
                            if chars.get(start) == Some(&'.') {
                                "recursive descent (..) is not supported"
                            } else if chars.get(start) == Some(&'*') {
                                "wildcards are not supported"
                            } else {
                                "expected a member name after '.'"
                            },
                        ));
                    }
                    segments.push(Segment::Key(chars[start..end].iter().collect()));
                    i = end;
                }
                '[' => {
                    let start = i + 1;
                    match chars.get(start) {
                        Some(&quote @ ('\'' | '"')) => {
                            let Some(len) = chars[start + 1..].iter().position(|&c| c == quote)
                            else {
                                return Err(fail(start, "unterminated quoted name"));
                            };
                            let close = start + 1 + len;
                            if chars.get(close + 1) != Some(&']') {
                                return Err(fail(close + 1, "expected ']' after quoted name"));
                            }
                            segments.push(Segment::Key(chars[start + 1..close].iter().collect()));
                            i = close + 2;
                        }
                        _ => {
                            let Some(len) = chars[start..].iter().position(|&c| c == ']') else {
                                return Err(fail(start, "unterminated '['"));
                            };
                            let inner: String = chars[start..start + len].iter().collect();
                            let index = inner.trim().parse::<i64>().map_err(|_| {
                                fail(
                                    start,
                                    "expected an integer index or a quoted name (wildcards and filters are not supported)",
                                )
                            })?;
                            segments.push(Segment::Index(index));
                            i = start + len + 1;
                        }
                    }
                }
                _ => return Err(fail(i, "expected '.' or '['")),
            }
        }
        Ok(Self { segments })
    }

    /// The steps after `$`.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The value the path names in `document`, if present.
    pub fn lookup<'a>(&self, document: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.segments
            .iter()
            .try_fold(document, |value, segment| match segment {
                Segment::Key(key) => value.as_object()?.get(key),
                Segment::Index(index) => {
                    let items = value.as_array()?;
                    let position = if *index < 0 {
                        items.len().checked_sub(index.unsigned_abs() as usize)?
                    } else {
                        usize::try_from(*index).ok()?
                    };
                    items.get(position)
                }
            })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.segments {
            match segment {
                Segment::Key(key) if !key.is_empty() && key.chars().all(is_name_char) => {
                    write!(f, ".{key}")?
                }
                Segment::Key(key) => write!(f, "[{key:?}]")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_dotted_and_bracket_steps() {
        let path = JsonPath::parse("$.services['ai providers'].list[-1][\"x.y\"]").unwrap();
        assert_eq!(
            path.segments(),
            &[
                Segment::Key("services".into()),
                Segment::Key("ai providers".into()),
                Segment::Key("list".into()),
                Segment::Index(-1),
                Segment::Key("x.y".into()),
            ]
        );
        assert!(JsonPath::parse("$").unwrap().segments().is_empty());
    }

    #[test]
    fn rejects_what_it_does_not_support() {
        for bad in [
            "",
            "services.database",
            "$.",
            "$..name",
            "$.*",
            "$[*]",
            "$[?(@.a)]",
            "$['open",
            "$[1",
            "$.a b",
            "$['a'x",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn looks_up_values() {
        let body = json!({"status": "healthy", "services": {"ai_providers": {"openai": "ok"}},
                          "checks": [{"s": 1}, {"s": 2}]});
        let get = |p: &str| JsonPath::parse(p).unwrap().lookup(&body).cloned();
        assert_eq!(get("$.status"), Some(json!("healthy")));
        assert_eq!(get("$.services.ai_providers.openai"), Some(json!("ok")));
        assert_eq!(get("$.checks[1].s"), Some(json!(2)));
        assert_eq!(get("$.checks[-2].s"), Some(json!(1)));
        assert_eq!(get("$.checks[5]"), None);
        assert_eq!(get("$.checks[-3]"), None);
        assert_eq!(get("$.status.x"), None);
        assert_eq!(get("$"), Some(body.clone()));
    }

    #[test]
    fn displays_round_trip() {
        for text in ["$.a.b[0]", "$[\"a b\"][-1]"] {
            let path = JsonPath::parse(text).unwrap();
            assert_eq!(JsonPath::parse(&path.to_string()).unwrap(), path);
        }
    }
}
