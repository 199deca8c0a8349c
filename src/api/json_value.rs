//! A strict, minimal RFC 8259 JSON parser for push API request bodies (no serde).
//!
//! Input comes from the network, so parsing never panics, recurses at most [`MAX_DEPTH`] deep
//! and allocates a bounded multiple of the input: a [`Value`] is 32 bytes and the smallest
//! array element (`0,`) is 2, so about 16 bytes per input byte, twice that transiently while a
//! long array grows. Objects keep their fields in order, duplicates included.

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

    fn string(&mut self) -> Result<String, JsonError> {
        let open = self.pos;
        self.pos += 1; // '"'
        let mut out = String::new();
        // Unescaped text is copied a run at a time; runs end at ASCII bytes, which are always
        // char boundaries, so slicing them out of the validated text cannot fail.
        let mut run = self.pos;
        loop {
            match self.peek() {
                None => return Err(error(open, "unterminated string")),
                Some(b @ (b'"' | b'\\')) => {
                    out.push_str(self.text.get(run..self.pos).unwrap_or_default());
                    if b == b'"' {
                        self.pos += 1;
                        return Ok(out);
                    }
                    out.push(self.escape()?);
                    run = self.pos;
                }
                Some(0..0x20) => return Err(self.err("control character in string")),
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Decodes the escape at `pos` (which is at the backslash).
    fn escape(&mut self) -> Result<char, JsonError> {
        let at = self.pos;
        self.pos += 1;
        match self.peek() {
            Some(b'u') => self.unicode_escape(at),
            Some(b) => {
                let c = short_escape(b).ok_or(error(at, "invalid escape"))?;
                self.pos += 1;
                Ok(c)
            }
            None => Err(self.err(EOF)),
        }
    }

    /// A `\u` escape (four hex digits), or two of them forming a surrogate pair; `pos` is at the `u`.
    fn unicode_escape(&mut self, at: usize) -> Result<char, JsonError> {
        let lone = error(at, "lone surrogate");
        self.pos += 1;
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.rest().starts_with(b"\\u") {
                return Err(lone);
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(lone);
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        // Only a low surrogate on its own can fail here.
        char::from_u32(code).ok_or(lone)
    }

    /// Four hex digits. Not `u32::from_str_radix`, which would also take a leading `+`.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
            code = code * 16 + digit.ok_or_else(|| self.unexpected("invalid \\u escape"))?;
            self.pos += 1;
        }
        Ok(code)
    }
}

/// The character a one-letter escape such as `\n` stands for.
fn short_escape(letter: u8) -> Option<char> {
    // Same order in both: the escape letters and what they stand for.
    let i = b"\"\\/bfnrt".iter().position(|&b| b == letter)?;
    "\"\\/\u{8}\u{c}\n\r\t".chars().nth(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Value {
        parse(input.as_bytes()).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    #[test]
    fn scalars() {
        assert_eq!(ok(" null "), Value::Null);
        assert_eq!(ok("true").as_bool(), Some(true));
        assert_eq!(ok("\t\r\nfalse\n"), Value::Bool(false));
        let numbers = [("0", 0.0), ("-0", -0.0), ("1.5", 1.5), ("-12e3", -12e3)];
        for (text, n) in numbers {
            assert_eq!(ok(text).as_f64(), Some(n), "{text}");
        }
        assert_eq!(ok("2.5e-1"), Value::Number(0.25));
        assert_eq!(ok("2E+2"), Value::Number(200.0));
        assert_eq!(ok(r#""hé😀""#).as_str(), Some("hé😀"));
    }

    #[test]
    fn as_u64_only_for_fitting_integers() {
        assert_eq!(ok("4000").as_u64(), Some(4000));
        assert_eq!(ok("1e3").as_u64(), Some(1000));
        assert_eq!(ok("9007199254740992").as_u64(), Some(1 << 53));
        for text in ["-1", "1.5", "1e20", "\"1\""] {
            assert_eq!(ok(text).as_u64(), None, "{text}");
        }
    }

    #[test]
    fn nesting() {
        let v = ok(r#" { "a" : [1, {"b": null}, []], "c": {}, "a": 2 } "#);
        let inner = Value::Object(vec![("b".into(), Value::Null)]);
        let list = [Value::Number(1.0), inner, Value::Array(vec![])];
        assert_eq!(v.get("a").and_then(Value::as_array), Some(&list[..]));
        assert_eq!(v.get("c"), Some(&Value::Object(vec![])));
        assert_eq!(v.get("zz"), None);
        assert_eq!(ok("[]").get("a"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(ok(r#""\"\\\/\b\f\n\r\t""#), s("\"\\/\u{8}\u{c}\n\r\t"));
        assert_eq!(ok(r#""a\u0041\u00e9\u20AC b""#), s("aAé€ b"));
        assert_eq!(ok(r#""\ud83d\ude00!""#), s("😀!"));
        assert_eq!(ok("\"\u{7f}\""), s("\u{7f}"));
    }

    #[test]
    fn errors() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"", 0, EOF),
            (b"  ", 2, EOF),
            (b"[1", 2, EOF),
            (b"\"\\", 2, EOF),
            (b"-", 1, EOF),
            (b"\xff", 0, "invalid UTF-8"),
            (b"\"a\xc3\"", 2, "invalid UTF-8"),
            (b"[1,]", 3, "unexpected character"),
            (b"+1", 0, "unexpected character"),
            (b"NaN", 0, "unexpected character"),
            (b".5", 0, "unexpected character"),
            (b"[1 2]", 3, "expected ',' or ']'"),
            (b"{\"a\" 1}", 5, "expected ':'"),
            (b"{1:2}", 1, "expected string key"),
            (b"{\"a\":1,}", 7, "expected string key"),
            (b"{\"a\":1 \"b\":2}", 7, "expected ',' or '}'"),
            (b"tru", 0, "invalid literal"),
            (b"nul", 0, "invalid literal"),
            (b"01", 1, "leading zero in number"),
            (b"-01", 2, "leading zero in number"),
            (b"-a", 1, "invalid number"),
            (b"1.e5", 2, "invalid number"),
            (b"1e+x", 3, "invalid number"),
            (b"1e999", 0, "number out of range"),
            (b"1 2", 2, "trailing characters"),
            (b"{}x", 2, "trailing characters"),
            (b" \"abc", 1, "unterminated string"),
            (b"\"a\x01\"", 2, "control character in string"),
            (b"\"a\nb\"", 2, "control character in string"),
            (b"\"\\x\"", 1, "invalid escape"),
            (b"\"\\u12G4\"", 5, "invalid \\u escape"),
            (b"\"\\u+123\"", 3, "invalid \\u escape"),
            (b"\"\\ud800\"", 1, "lone surrogate"),
            (b"\"\\ud800\\u0041\"", 1, "lone surrogate"),
            (b"\"\\udc00\\ud800\"", 1, "lone surrogate"),
        ];
        for &(input, offset, kind) in cases {
            assert_eq!(parse(input), Err(JsonError { offset, kind }), "{input:?}");
        }
        let e = parse(b"[x]").unwrap_err().to_string();
        assert_eq!(e, "invalid JSON at byte 1: unexpected character");
    }

    #[test]
    fn depth_is_bounded() {
        let nest = |n: usize, open: &str, close: &str| open.repeat(n) + "0" + &close.repeat(n);
        assert!(parse(nest(MAX_DEPTH, "[", "]").as_bytes()).is_ok());
        assert!(parse(nest(MAX_DEPTH, "{\"k\":", "}").as_bytes()).is_ok());
        let too_deep = nest(MAX_DEPTH + 1, "[", "]");
        assert_eq!(
            parse(too_deep.as_bytes()),
            Err(error(MAX_DEPTH, "too deeply nested"))
        );
        let err = parse("[".repeat(10_000).as_bytes()).unwrap_err();
        assert_eq!(err.kind, "too deeply nested");
        assert!(parse("{\"a\":".repeat(10_000).as_bytes()).is_err());
    }
}
