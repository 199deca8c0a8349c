//! The result of a run as printed: one JSON line (a flat object, built by hand since it needs no
//! JSON crate) and then one human line, both on stdout. compare.sh records the first line and
//! shows the second, so nothing else may be printed to stdout.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::Opts;

/// One result being built: the JSON fields in order, the verdict and the human line.
pub struct Report {
    fields: Vec<(String, String)>,
    pub ok: bool,
    pub human: String,
}

impl Report {
    pub fn new(opts: &Opts) -> Report {
        let mut r = Report {
            fields: Vec::new(),
            ok: true,
            human: String::new(),
        };
        r.s("scenario", &opts.scenario);
        r.s("label", &opts.label);
        r
    }
    pub fn s(&mut self, k: &str, v: &str) {
        self.fields
            .push((k.into(), format!("\"{}\"", json_escape(v))));
    }
    pub fn i(&mut self, k: &str, v: u64) {
        self.fields.push((k.into(), v.to_string()));
    }
    pub fn f(&mut self, k: &str, v: f64, digits: usize) {
        let text = if v.is_finite() {
            format!("{v:.digits$}")
        } else {
            "null".into()
        };
        self.fields.push((k.into(), text));
    }
    pub fn failures(&mut self, failures: &HashMap<String, usize>) {
        let mut list: Vec<_> = failures.iter().collect();
        list.sort_by(|a, b| b.1.cmp(a.1));
        let mut text = String::from("{");
        for (n, (why, count)) in list.iter().take(5).enumerate() {
            if n > 0 {
                text.push(',');
            }
            let _ = write!(text, "\"{}\":{count}", json_escape(why));
        }
        text.push('}');
        self.fields.push(("failures".into(), text));
    }
    pub fn json(&self) -> String {
        let mut out = String::from("{");
        let _ = write!(out, "\"ok\":{}", self.ok);
        for (k, v) in &self.fields {
            let _ = write!(out, ",\"{k}\":{v}");
        }
        out.push('}');
        out
    }
}

/// A string's content for a JSON string literal.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The most frequent failure reason, as a suffix for a human line (empty when none).
pub fn top_failure(failures: &HashMap<String, usize>) -> String {
    failures
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(why, n)| format!(" (failures: {n}x {why})"))
        .unwrap_or_default()
}
