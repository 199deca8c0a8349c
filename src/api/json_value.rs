//! A strict, minimal RFC 8259 JSON parser for push API request bodies (no serde).
//!
//! Input comes from the network, so parsing never panics, recurses at most [`MAX_DEPTH`] deep
//! and allocates a bounded multiple of the input: a [`Value`] is 32 bytes and the smallest
//! array element (`0,`) is 2, so about 16 bytes per input byte, twice that transiently while a
//! long array grows. Objects keep their fields in order, duplicates included. Values and
//! their structure are read here, string literals in `string.rs`.

mod string;

use std::fmt;

/// Deepest nesting of arrays and objects accepted; it also bounds the parser's recursion.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The value of the first field named `key`, if this is an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let Value::Object(o) = self else { return None };
        o.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn as_str(&self) -> Option<&str> {
        let Value::String(s) = self else { return None };
        Some(s)
    }

    pub fn as_f64(&self) -> Option<f64> {
        let Value::Number(n) = self else { return None };
        Some(*n)
    }

    /// Non-negative integral numbers below 2^64. Numbers are f64, so above 2^53 this is the
    /// nearest double, not necessarily the digits that were sent.
    pub fn as_u64(&self) -> Option<u64> {
        const LIMIT: f64 = 18_446_744_073_709_551_616.0; // 2^64, exact as f64
        let n = self.as_f64()?;
        // The range check makes the cast exact rather than saturating.
        ((0.0..LIMIT).contains(&n) && n.fract() == 0.0).then_some(n as u64)
    }

    pub fn as_bool(&self) -> Option<bool> {
        let Value::Bool(b) = self else { return None };
        Some(*b)
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        let Value::Array(a) = self else { return None };
        Some(a)
    }
}

/// Where parsing stopped and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub offset: usize,
    pub kind: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for JsonError {}

fn error(offset: usize, kind: &'static str) -> JsonError {
    JsonError { offset, kind }
}

const EOF: &str = "unexpected end of input";

/// Parses `input` as exactly one JSON value, optionally surrounded by whitespace.
pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
    let text = std::str::from_utf8(input).map_err(|e| error(e.valid_up_to(), "invalid UTF-8"))?;
    let mut p = Parser { text, pos: 0 };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    match p.peek() {
        None => Ok(value),
        Some(_) => Err(p.err("trailing characters")),
    }
}

struct Parser<'a> {
    /// Already checked to be UTF-8, so string contents can be sliced out without re-checking.
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &[u8] {
        self.text.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    fn eat_digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn err(&self, kind: &'static str) -> JsonError {
        error(self.pos, kind)
    }

    /// Running out of input is reported as such rather than as whatever was expected next.
    fn unexpected(&self, kind: &'static str) -> JsonError {
        self.err(if self.peek().is_none() { EOF } else { kind })
    }

    /// `depth` counts the containers around the value.
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'[') => self
                .list(depth + 1, b']', "expected ',' or ']'", Self::value)
                .map(Value::Array),
            Some(b'{') => self
                .list(depth + 1, b'}', "expected ',' or '}'", Self::field)
                .map(Value::Object),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.unexpected("unexpected character")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if !self.rest().starts_with(word.as_bytes()) {
            return Err(self.err("invalid literal"));
        }
        self.pos += word.len();
        Ok(value)
    }

    /// `item (',' item)*` up to `close`, for arrays and objects alike; `pos` is at the opener.
    fn list<T>(
        &mut self,
        depth: usize,
        close: u8,
        expected: &'static str,
        item: fn(&mut Self, usize) -> Result<T, JsonError>,
    ) -> Result<Vec<T>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("too deeply nested"));
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            self.skip_ws();
            items.push(item(self, depth)?);
            self.skip_ws();
            if self.eat(close) {
                // A one-item Vec has room for four; trimming keeps `[[[0]]]` from costing
                // 128 bytes per input byte.
                items.shrink_to_fit();
                return Ok(items);
            }
            if !self.eat(b',') {
                return Err(self.unexpected(expected));
            }
        }
    }

    fn field(&mut self, depth: usize) -> Result<(String, Value), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("expected string key"));
        }
        let key = self.string()?;
        self.skip_ws();
        if !self.eat(b':') {
            return Err(self.unexpected("expected ':'"));
        }
        self.skip_ws();
        Ok((key, self.value(depth)?))
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, checked here because Rust's
    /// float parser is laxer (it takes `+1`, `1.`, `.5`, `inf`).
    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        self.eat(b'-');
        if self.eat(b'0') {
            if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.err("leading zero in number"));
            }
        } else if self.eat_digits() == 0 {
            return Err(self.unexpected("invalid number"));
        }
        if self.eat(b'.') && self.eat_digits() == 0 {
            return Err(self.unexpected("invalid number"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.eat_digits() == 0 {
                return Err(self.unexpected("invalid number"));
            }
        }
        // The grammar is a subset of what `f64::from_str` takes, so only overflow can fail.
        let digits = self.text.get(start..self.pos).unwrap_or_default();
        match digits.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ => Err(error(start, "number out of range")),
        }
    }
}

#[cfg(test)]
mod tests;
