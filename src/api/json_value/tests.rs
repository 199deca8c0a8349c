//! Unit tests of the JSON parser: what it accepts, what it rejects and where, its bounds.

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
