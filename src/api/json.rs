//! A tiny JSON writer for the flat objects wscgi sends (event envelopes,
//! error bodies). It only writes; nothing here parses JSON.

use std::fmt::Write as _;

/// Writes `s` as a quoted JSON string. Non-ASCII passes through as UTF-8;
/// only what JSON requires is escaped.
pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    // Copy unescaped runs whole instead of char by char.
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let short = match c {
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\n' => Some('n'),
            '\r' => Some('r'),
            '\t' => Some('t'),
            c if c < ' ' => None,
            _ => continue,
        };
        out.push_str(s.get(run..i).unwrap_or_default());
        match short {
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
        run = i + c.len_utf8();
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

/// A number JSON can carry. Non-finite floats have no JSON form and are
/// written as `null`.
pub trait Number {
    fn write_json(&self, out: &mut String);
}

macro_rules! integer_number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn write_json(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

integer_number!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl Number for f64 {
    fn write_json(&self, out: &mut String) {
        if self.is_finite() {
            // Display never uses exponent notation, so this is valid JSON.
            let _ = write!(out, "{self}");
        } else {
            out.push_str("null");
        }
    }
}

/// Builds one JSON object: `Object::new().str("k", "v").num("n", 3).finish()`.
/// Keys are not deduplicated; the caller picks distinct ones.
#[derive(Debug, Clone)]
pub struct Object {
    buf: String,
}

impl Object {
    pub fn new() -> Self {
        Object {
            buf: String::from("{"),
        }
    }

    fn key(mut self, k: &str) -> Self {
        if self.buf.len() > 1 {
            self.buf.push(',');
        }
        escape_into(&mut self.buf, k);
        self.buf.push(':');
        self
    }

    pub fn str(self, k: &str, v: &str) -> Self {
        let mut o = self.key(k);
        escape_into(&mut o.buf, v);
        o
    }

    pub fn num(self, k: &str, v: impl Number) -> Self {
        let mut o = self.key(k);
        v.write_json(&mut o.buf);
        o
    }

    pub fn bool(self, k: &str, v: bool) -> Self {
        let mut o = self.key(k);
        o.buf.push_str(if v { "true" } else { "false" });
        o
    }

    /// Inserts `raw_json` verbatim; the caller guarantees it is valid JSON.
    pub fn raw(self, k: &str, raw_json: &str) -> Self {
        let mut o = self.key(k);
        o.buf.push_str(raw_json);
        o
    }

    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

impl Default for Object {
    fn default() -> Self {
        Self::new()
    }
}

/// `{"error":"<message>"}`, the body of every push-API error.
pub fn error_body(message: &str) -> String {
    Object::new().str("error", message).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    }

    #[test]
    fn escaping() {
        let cases = [
            ("", r#""""#),
            ("plain", r#""plain""#),
            ("say \"hi\"", r#""say \"hi\"""#),
            ("a\\b", r#""a\\b""#),
            ("l1\nl2\r\t", r#""l1\nl2\r\t""#),
            ("\u{0}\u{1f}\u{7f}", "\"\\u0000\\u001f\u{7f}\""),
            ("héllo ✓ 😀", "\"héllo ✓ 😀\""),
        ];
        for (input, want) in cases {
            assert_eq!(esc(input), want, "{input:?}");
        }
    }

    #[test]
    fn object_builder() {
        let o = Object::new()
            .str("type", "message")
            .num("id", 3u64)
            .num("delta", -7i64)
            .num("ratio", 0.5)
            .num("nan", f64::NAN)
            .bool("binary", false)
            .raw("data", r#"{"x":[1]}"#)
            .str("k\"ey", "v\n")
            .finish();
        assert_eq!(
            o,
            r#"{"type":"message","id":3,"delta":-7,"ratio":0.5,"nan":null,"binary":false,"data":{"x":[1]},"k\"ey":"v\n"}"#
        );
        assert_eq!(Object::default().finish(), "{}");
        assert_eq!(
            error_body("no such \"conn\""),
            r#"{"error":"no such \"conn\""}"#
        );
    }
}
