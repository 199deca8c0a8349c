//! The protocol's request header names for the HTTP backend: sent with their documented case
//! (`WS-Event`), at the cost of one record made once.
//!
//! ureq keeps a header's case in a record it stores in the request's extensions, made by
//! `header_raw` for every header of every request: two name parses, a string and a list
//! search each. The protocol's names never change, so the record for all of them is made once
//! ([`casing`]) and cloned into each request, whose headers are then added under names
//! parsed at compile time ([`known`]). Names not in the list (`WS-Meta-<name>`) still go
//! through `header_raw`, which adds to the cloned record.

use ureq::Agent;
use ureq::http::{Extensions, HeaderName};

/// Every request header name of the protocol but `WS-Meta-<name>`: as documented, and as
/// ureq's lowercase `HeaderName`.
const NAMES: [(&str, HeaderName); 11] = [
    ("WS-Event", HeaderName::from_static("ws-event")),
    ("WS-Boot-Id", HeaderName::from_static("ws-boot-id")),
    (
        "WS-Connection-Id",
        HeaderName::from_static("ws-connection-id"),
    ),
    ("WS-Seq", HeaderName::from_static("ws-seq")),
    ("WS-Path", HeaderName::from_static("ws-path")),
    ("WS-Remote-Addr", HeaderName::from_static("ws-remote-addr")),
    (
        "WS-Message-Type",
        HeaderName::from_static("ws-message-type"),
    ),
    ("WS-Close-Code", HeaderName::from_static("ws-close-code")),
    (
        "WS-Close-Reason",
        HeaderName::from_static("ws-close-reason"),
    ),
    ("WS-Timestamp", HeaderName::from_static("ws-timestamp")),
    ("WS-Signature", HeaderName::from_static("ws-signature")),
];

/// The `HeaderName` of a protocol name, if `name` is one.
pub fn known(name: &str) -> Option<HeaderName> {
    // Only names of the protocol's prefix are looked for, and those by length first.
    let rest = name.strip_prefix("WS-")?;
    NAMES
        .iter()
        .find(|(documented, _)| documented.len() == name.len() && &documented[3..] == rest)
        .map(|(_, header)| header.clone())
}

/// ureq's case record for every name in the list, as request extensions to clone.
pub fn casing(agent: &Agent) -> Extensions {
    let builder = NAMES
        .iter()
        .fold(agent.post("http://localhost/"), |b, (name, _)| {
            b.header_raw(name, b"")
        });
    builder.extensions_ref().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_the_documented_names_lowercased() {
        for (documented, header) in &NAMES {
            assert_eq!(documented.to_ascii_lowercase(), header.as_str());
            assert!(documented.starts_with("WS-"));
        }
        assert_eq!(known("WS-Seq"), Some(HeaderName::from_static("ws-seq")));
        assert_eq!(known("ws-seq"), None, "only the documented spelling");
        assert_eq!(known("WS-Meta-user"), None);
    }
}
