//! YAML loading for `check`: multi-document streams turned into JSON values (what the API server
//! sees after `kubectl` converts YAML) plus an index from field path to source line, so an error
//! about `spec.steps[2].timeout` can point at the line where that field is written.
//!
//! Built on the event parser of `saphyr-parser`, which reports a position for every node.
//! Scalars are resolved with the YAML 1.2 core schema (`true`, `3`, `1.5`, `null`, `~`), plus
//! the YAML 1.1 booleans (`yes`, `no`, `on`, `off`, `y`, `n`) that Kubernetes' YAML decoder
//! still reads as booleans, so `check` sees the same value the API server receives.

use std::collections::{BTreeMap, HashMap};

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// A YAML problem that stops reading the rest of the stream, with the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong, as the parser phrases it.
    pub message: String,
}

/// One document of a YAML stream.
#[derive(Debug, Clone)]
pub struct Document {
    /// Position of the document in its stream, from 0.
    pub index: usize,
    /// 1-based line of the document's first node.
    pub line: usize,
    /// The document as JSON, as the API server would receive it.
    pub value: Value,
    /// Line of every node, by field path (`spec.steps[2].timeout`). A mapping value is indexed at
    /// the line of its key, a list item at the line of the item.
    positions: BTreeMap<String, usize>,
}

impl Document {
    /// The line of the deepest node of `path` that exists in the document: the field itself when
    /// it is written, otherwise its closest written ancestor (a missing required field points at
    /// its parent), and the document's first line when nothing matches.
    pub fn line_of(&self, path: &str) -> usize {
        let mut current = path;
        loop {
            if let Some(line) = self.positions.get(current) {
                return *line;
            }
            match parent_path(current) {
                Some(parent) => current = parent,
                None => return self.line,
            }
        }
    }
}

/// The path one level up: `spec.steps[2]` for `spec.steps[2].timeout`, `spec.steps` for
/// `spec.steps[2]`; `None` at the root.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = if path.ends_with(']') {
        path.rfind('[')
    } else {
        path.rfind('.')
    };
    Some(cut.map_or("", |at| &path[..at]))
}

/// Joins a field name onto a path (`spec` + `steps` = `spec.steps`).
pub fn join_field(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Joins a list index onto a path (`spec.steps` + 2 = `spec.steps[2]`).
pub fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The documents of a stream that could be read, and the error that stopped reading, if any
/// (documents before a syntax error are still returned and checked).
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// Every document read, in order.
    pub documents: Vec<Document>,
    /// The syntax error that ended the stream early.
    pub error: Option<YamlError>,
}

/// Reads every document of a YAML stream.
pub fn load(text: &str) -> Stream {
    let mut builder = Builder::default();
    let mut stream = Stream::default();
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => match builder.event(event, span) {
                Ok(Some(document)) => stream.documents.push(document),
                Ok(None) => {}
                Err(error) => {
                    stream.error = Some(error);
                    break;
                }
            },
            Err(error) => {
                stream.error = Some(YamlError {
                    line: error.marker().line(),
                    message: error.info().to_string(),
                });
                break;
            }
        }
    }
    stream
}

/// A collection being built.
#[derive(Debug)]
enum Frame {
    Sequence {
        path: String,
        anchor: usize,
        items: Vec<Value>,
    },
    Mapping {
        path: String,
        anchor: usize,
        entries: Map<String, Value>,
        /// The key read last, waiting for its value, with its line.
        key: Option<(String, usize)>,
        /// Mappings merged in with `<<`; explicit keys win over them.
        merges: Vec<Map<String, Value>>,
    },
}

/// Turns parser events into documents.
#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    positions: BTreeMap<String, usize>,
    index: usize,
    doc_line: Option<usize>,
}

/// Where the next node goes.
enum Slot {
    Root,
    Key,
    Value(String),
    Item(String),
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<Option<Document>, YamlError> {
        let line = span.start.line();
        match event {
            Event::DocumentStart(_) => {
                self.positions.clear();
                self.anchors.clear();
                self.doc_line = None;
                Ok(None)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let slot = self.slot(line)?;
                if let Slot::Key = slot {
                    self.set_key(text.into_owned(), line);
                    return Ok(None);
                }
                let value = resolve_scalar(&text, style, tag.as_deref())
                    .map_err(|message| YamlError { line, message })?;
                if anchor != 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.place(slot, value, line)
            }
            Event::Alias(anchor) => {
                let slot = self.slot(line)?;
                let value = self.anchors.get(&anchor).cloned().ok_or(YamlError {
                    line,
                    message: "alias to an unknown anchor".into(),
                })?;
                if let Slot::Key = slot {
                    return Err(YamlError {
                        line,
                        message: "aliases are not supported as mapping keys".into(),
                    });
                }
                self.place(slot, value, line)
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.open(line)?;
                self.stack.push(Frame::Sequence {
                    path,
                    anchor,
                    items: Vec::new(),
                });
                Ok(None)
            }
            Event::MappingStart(anchor, _) => {
                let path = self.open(line)?;
                self.stack.push(Frame::Mapping {
                    path,
                    anchor,
                    entries: Map::new(),
                    key: None,
                    merges: Vec::new(),
                });
                Ok(None)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (path, anchor, value) = match self.stack.pop() {
                    Some(Frame::Sequence {
                        path,
                        anchor,
                        items,
                    }) => (path, anchor, Value::Array(items)),
                    Some(Frame::Mapping {
                        path,
                        anchor,
                        mut entries,
                        merges,
                        ..
                    }) => {
                        for merged in merges {
                            for (key, value) in merged {
                                entries.entry(key).or_insert(value);
                            }
                        }
                        (path, anchor, Value::Object(entries))
                    }
                    None => {
                        return Err(YamlError {
                            line,
                            message: "unbalanced collection end".into(),
                        });
                    }
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.finish(&path, value)
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => Ok(None),
        }
    }

    /// Where the node starting at `line` goes, recording its position.
    fn slot(&mut self, line: usize) -> Result<Slot, YamlError> {
        let slot = match self.stack.last_mut() {
            None => {
                self.doc_line = Some(line);
                Slot::Root
            }
            Some(Frame::Sequence { path, items, .. }) => Slot::Item(join_index(path, items.len())),
            Some(Frame::Mapping { path, key, .. }) => match key {
                None => Slot::Key,
                Some((key, _)) => Slot::Value(join_field(path, key)),
            },
        };
        match &slot {
            Slot::Item(path) => {
                self.positions.insert(path.clone(), line);
            }
            Slot::Value(path) => {
                let key_line = match self.stack.last() {
                    Some(Frame::Mapping {
                        key: Some((_, key_line)),
                        ..
                    }) => *key_line,
                    _ => line,
                };
                self.positions.insert(path.clone(), key_line);
            }
            Slot::Root | Slot::Key => {}
        }
        Ok(slot)
    }

    /// Starts a collection at `line`; returns its path.
    fn open(&mut self, line: usize) -> Result<String, YamlError> {
        match self.slot(line)? {
            Slot::Root => Ok(String::new()),
            Slot::Value(path) | Slot::Item(path) => Ok(path),
            Slot::Key => Err(YamlError {
                line,
                message: "complex mapping keys are not supported in Kubernetes manifests".into(),
            }),
        }
    }

    fn set_key(&mut self, text: String, line: usize) {
        if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
            *key = Some((text, line));
        }
    }

    /// Puts a finished scalar into its slot; returns the document when it was the root.
    fn place(
        &mut self,
        slot: Slot,
        value: Value,
        line: usize,
    ) -> Result<Option<Document>, YamlError> {
        match slot {
            Slot::Root => Ok(Some(self.document(value, line))),
            Slot::Key => Ok(None),
            Slot::Value(_) | Slot::Item(_) => {
                self.attach(value, line)?;
                Ok(None)
            }
        }
    }

    /// Puts a finished collection into its parent; returns the document when it was the root.
    fn finish(&mut self, path: &str, value: Value) -> Result<Option<Document>, YamlError> {
        if self.stack.is_empty() {
            let line = self
                .positions
                .get(path)
                .copied()
                .or(self.doc_line)
                .unwrap_or(1);
            return Ok(Some(self.document(value, line)));
        }
        let line = self.positions.get(path).copied().unwrap_or(1);
        self.attach(value, line)?;
        Ok(None)
    }

    fn attach(&mut self, value: Value, line: usize) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            Some(Frame::Sequence { items, .. }) => {
                items.push(value);
                Ok(())
            }
            Some(Frame::Mapping {
                entries,
                key,
                merges,
                ..
            }) => {
                let Some((name, key_line)) = key.take() else {
                    return Err(YamlError {
                        line,
                        message: "mapping value without a key".into(),
                    });
                };
                if name == "<<" {
                    match value {
                        Value::Object(map) => merges.push(map),
                        Value::Array(list) => {
                            merges.extend(list.into_iter().filter_map(|item| match item {
                                Value::Object(map) => Some(map),
                                _ => None,
                            }))
                        }
                        _ => {
                            return Err(YamlError {
                                line: key_line,
                                message: "merge key `<<` needs a mapping".into(),
                            });
                        }
                    }
                    return Ok(());
                }
                if entries.contains_key(&name) {
                    return Err(YamlError {
                        line: key_line,
                        message: format!("duplicate key {name:?}"),
                    });
                }
                entries.insert(name, value);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn document(&mut self, value: Value, line: usize) -> Document {
        let document = Document {
            index: self.index,
            line,
            value,
            positions: std::mem::take(&mut self.positions),
        };
        self.index += 1;
        document
    }
}

/// Resolves a scalar with the YAML 1.2 core schema; quoted scalars and `!!str` are strings.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag
        && tag.is_yaml_core_schema()
    {
        return match tag.suffix.as_str() {
            "str" => Ok(Value::String(text.to_string())),
            "null" => Ok(Value::Null),
            "bool" => resolve_plain(text)
                .filter(Value::is_boolean)
                .ok_or_else(|| format!("{text:?} is not a boolean")),
            "int" => resolve_plain(text)
                .filter(|v| v.is_i64() || v.is_u64())
                .ok_or_else(|| format!("{text:?} is not an integer")),
            "float" => resolve_plain(text)
                .filter(Value::is_number)
                .ok_or_else(|| format!("{text:?} is not a number")),
            other => Err(format!("unsupported tag !!{other}")),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    if matches!(
        text,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | ".nan" | ".NaN" | ".NAN"
    ) {
        return Err(format!("{text} cannot be represented in JSON"));
    }
    Ok(resolve_plain(text).unwrap_or_else(|| Value::String(text.to_string())))
}

/// Null, boolean, integer or float per the core schema; `None` for plain strings.
fn resolve_plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        // YAML 1.1 booleans, as sigs.k8s.io/yaml decodes them.
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(Value::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Value::from);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return u64::from_str_radix(octal, 8).ok().map(Value::from);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(int) = text.parse::<i64>() {
            return Some(Value::from(int));
        }
        if let Ok(int) = text.parse::<u64>() {
            return Some(Value::from(int));
        }
    }
    if is_core_float(digits) {
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    None
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` without the sign.
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(int_part)
        && frac_part.is_none_or(all_digits)
        && (!int_part.is_empty() || frac_part.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loads_multi_document_streams_with_lines() {
        let text = "\
apiVersion: v1
kind: A
---
# comment
apiVersion: v2
kind: B
spec:
  steps:
    - name: one
      timeout: 5m
    - name: two
      timeout: 7m
";
        let stream = load(text);
        assert!(stream.error.is_none(), "{:?}", stream.error);
        assert_eq!(stream.documents.len(), 2);
        let second = &stream.documents[1];
        assert_eq!(second.index, 1);
        assert_eq!(second.line, 5);
        assert_eq!(second.value["spec"]["steps"][1]["timeout"], json!("7m"));
        assert_eq!(second.line_of("spec.steps[1].timeout"), 12);
        assert_eq!(second.line_of("spec.steps[1]"), 11);
        assert_eq!(second.line_of("spec.steps[0].missing"), 9);
        assert_eq!(second.line_of("spec"), 7);
        assert_eq!(second.line_of("nothing.here"), 5);
        assert_eq!(stream.documents[0].line_of("kind"), 2);
    }

    #[test]
    fn resolves_scalars_with_the_core_schema() {
        let stream = load(
            "a: 3\nb: -4\nc: 1.5\nd: true\ne: ~\nf: '3'\ng: 0x1f\nh: yes\ni: 1e3\nj: !!str 12\nk: \"true\"\nl: 2026-01-01\n",
        );
        let value = &stream.documents[0].value;
        assert_eq!(value["a"], json!(3));
        assert_eq!(value["b"], json!(-4));
        assert_eq!(value["c"], json!(1.5));
        assert_eq!(value["d"], json!(true));
        assert_eq!(value["e"], Value::Null);
        assert_eq!(value["f"], json!("3"));
        assert_eq!(value["g"], json!(31));
        // Kubernetes' decoder reads YAML 1.1 booleans.
        assert_eq!(value["h"], json!(true));
        assert_eq!(value["i"], json!(1000.0));
        assert_eq!(value["j"], json!("12"));
        assert_eq!(value["k"], json!("true"));
        assert_eq!(value["l"], json!("2026-01-01"));
    }

    #[test]
    fn reports_syntax_errors_with_their_line_after_good_documents() {
        let stream = load("a: 1\n---\nb: [1, 2\nc: 3\n");
        assert_eq!(stream.documents.len(), 1);
        let error = stream.error.expect("syntax error");
        assert!(error.line >= 3, "{error:?}");
    }

    #[test]
    fn rejects_duplicate_keys_at_the_second_key() {
        let stream = load("a: 1\nb:\n  c: 1\n  c: 2\n");
        assert_eq!(stream.error.map(|e| e.line), Some(4));
    }

    #[test]
    fn resolves_anchors_aliases_and_merge_keys() {
        let stream = load("base: &b\n  x: 1\n  y: 2\nuse:\n  <<: *b\n  y: 3\ncopy: *b\n");
        let value = &stream.documents[0].value;
        assert_eq!(value["use"], json!({"x": 1, "y": 3}));
        assert_eq!(value["copy"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn flow_collections_and_scalar_roots() {
        let stream = load("--- {a: [1, {b: c}]}\n--- plain\n---\n");
        assert_eq!(stream.documents.len(), 3);
        assert_eq!(stream.documents[0].value, json!({"a": [1, {"b": "c"}]}));
        assert_eq!(stream.documents[1].value, json!("plain"));
        assert_eq!(stream.documents[2].value, Value::Null);
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("spec.steps[2].timeout"), Some("spec.steps[2]"));
        assert_eq!(parent_path("spec.steps[2]"), Some("spec.steps"));
        assert_eq!(parent_path("spec"), Some(""));
        assert_eq!(parent_path(""), None);
    }
}
