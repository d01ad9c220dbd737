//! The Python string and dict methods chat templates call (`message['content'].strip()`,
//! `message.get('tool_calls')`), which minijinja does not have, and transformers' `tojson`
//! (Python's `json.dumps` spacing, no HTML escaping, unlike minijinja's built-in).

use minijinja::{
    Error, ErrorKind, State, Value,
    value::{ValueKind, from_args},
};
use serde::Serialize;

/// Handles a method minijinja does not know; anything else stays an unknown-method error.
pub fn python_method(_state: &State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::String => string_method(value.as_str().unwrap_or_default(), method, args),
        ValueKind::Map => map_method(value, method, args),
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    let strip_set = |chars: Option<&str>| -> Box<dyn Fn(char) -> bool> {
        match chars {
            None => Box::new(char::is_whitespace),
            Some(set) => {
                let set: Vec<char> = set.chars().collect();
                Box::new(move |c| set.contains(&c))
            }
        }
    };
    Ok(match method {
        "strip" | "lstrip" | "rstrip" => {
            let (chars,): (Option<&str>,) = from_args(args)?;
            let matches = strip_set(chars);
            Value::from(match method {
                "strip" => s.trim_matches(&matches),
                "lstrip" => s.trim_start_matches(&matches),
                _ => s.trim_end_matches(&matches),
            })
        }
        "startswith" => {
            let (prefix,): (&str,) = from_args(args)?;
            Value::from(s.starts_with(prefix))
        }
        "endswith" => {
            let (suffix,): (&str,) = from_args(args)?;
            Value::from(s.ends_with(suffix))
        }
        "upper" => Value::from(s.to_uppercase()),
        "lower" => Value::from(s.to_lowercase()),
        "replace" => {
            let (from, to): (&str, &str) = from_args(args)?;
            Value::from(s.replace(from, to))
        }
        "split" => {
            let (separator,): (Option<&str>,) = from_args(args)?;
            let parts: Vec<String> = match separator {
                Some(sep) if !sep.is_empty() => s.split(sep).map(str::to_string).collect(),
                Some(_) => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "split(): empty separator",
                    ));
                }
                None => s.split_whitespace().map(str::to_string).collect(),
            };
            Value::from(parts)
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

fn map_method(map: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    let keys = || -> Result<Vec<Value>, Error> { Ok(map.try_iter()?.collect()) };
    Ok(match method {
        "get" => {
            let (key, default): (Value, Option<Value>) = from_args(args)?;
            match map.get_item(&key)? {
                found if found.is_undefined() => default.unwrap_or(Value::from(())),
                found => found,
            }
        }
        "keys" => {
            let _: () = from_args(args)?;
            Value::from(keys()?)
        }
        "values" => {
            let _: () = from_args(args)?;
            let values: Result<Vec<Value>, Error> = keys()?.iter().map(|k| map.get_item(k)).collect();
            Value::from(values?)
        }
        "items" => {
            let _: () = from_args(args)?;
            let items: Result<Vec<Value>, Error> = keys()?
                .into_iter()
                .map(|k| Ok(Value::from(vec![k.clone(), map.get_item(&k)?])))
                .collect();
            Value::from(items?)
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

/// `raise_exception(message)`: templates call it to reject a conversation.
pub fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`: `", "` and `": "` between
/// items when not indented, raw non-ASCII characters.
pub fn tojson(value: Value, indent: Option<usize>) -> Result<Value, Error> {
    let mut out = Vec::new();
    let result = match indent {
        Some(width) => {
            let indent = vec![b' '; width];
            let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
            value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, formatter))
        }
        None => value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            PythonSpacing,
        )),
    };
    result.map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let text = String::from_utf8(out)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    Ok(Value::from_safe_string(text))
}

/// serde_json's compact output with Python's default separators.
struct PythonSpacing;

impl serde_json::ser::Formatter for PythonSpacing {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}
