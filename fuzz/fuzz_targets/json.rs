//! `api::json_value::parse` (checked by a write/re-parse round trip through `api::json`'s string
//! escaper) and `api::batch::parse` on the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::api::batch::{self, BatchError, MAX_OPS, Op};
use wscgi::api::json::escape_into;
use wscgi::api::json_value::{MAX_DEPTH, Value, parse};
use wscgi::ws::close;

/// Writes `v` back as JSON; returns the nesting depth of containers.
fn write(v: &Value, out: &mut String) -> usize {
    let mut depth = 0;
    let mut items = |out: &mut String, items: &mut dyn Iterator<Item = (Option<&str>, &Value)>| {
        for (i, (key, v)) in items.enumerate() {
            out.push_str(if i == 0 { "" } else { "," });
            if let Some(k) = key {
                escape_into(out, k);
                out.push(':');
            }
            depth = depth.max(write(v, out));
        }
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // Display is the shortest text that reads back as the same f64 (no exponent).
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => escape_into(out, s),
        Value::Array(a) => {
            out.push('[');
            items(out, &mut a.iter().map(|v| (None, v)));
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            items(out, &mut o.iter().map(|(k, v)| (Some(k.as_str()), v)));
            out.push('}');
        }
    }
    match v {
        Value::Array(_) | Value::Object(_) => depth + 1,
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    match &parsed {
        Ok(v) => {
            assert!(std::str::from_utf8(data).is_ok());
            let mut text = String::new();
            assert!(
                write(v, &mut text) <= MAX_DEPTH,
                "nesting over MAX_DEPTH accepted"
            );
            let back = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(&back, v, "round trip through {text:?}");
        }
        Err(e) => assert!(e.offset <= data.len(), "{e:?}"),
    }

    match batch::parse(data) {
        Ok(ops) => {
            let Ok(Value::Array(entries)) = &parsed else {
                panic!("batch accepted non-array")
            };
            assert!(ops.len() == entries.len() && ops.len() <= MAX_OPS);
            for op in ops.iter().flatten() {
                if let Op::Close { code, reason, .. } = op {
                    assert!(close::valid_to_send(*code) && reason.len() <= 123);
                }
            }
        }
        Err(BatchError::Json(e)) => assert_eq!(Err(&e), parsed.as_ref()),
        Err(BatchError::NotAnArray) => {
            assert!(matches!(parsed, Ok(ref v) if v.as_array().is_none()))
        }
        Err(BatchError::TooManyOps(n)) => assert!(n > MAX_OPS),
    }
});
