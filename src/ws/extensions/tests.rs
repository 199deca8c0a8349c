use super::*;

const DEFAULT: Policy = Policy {
    context_takeover: false,
};
const CONTEXT: Policy = Policy {
    context_takeover: true,
};

fn answer(headers: &[&str], policy: Policy) -> Option<String> {
    negotiate(headers.iter().copied(), policy).map(|p| p.answer())
}

const NO_CONTEXT: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// RFC 7692's offers (§5.2, §7.1.3 and the parameter sections), with what wscgi answers by
/// default (no context takeover either way) and with `--deflate-context`.
#[test]
fn rfc_7692_examples() {
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        (
            "permessage-deflate",
            Some(NO_CONTEXT),
            Some("permessage-deflate"),
        ),
        (
            "permessage-deflate; client_max_window_bits",
            Some(NO_CONTEXT),
            Some("permessage-deflate"),
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            Some(NO_CONTEXT),
            Some("permessage-deflate"),
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            Some(NO_CONTEXT),
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            Some(NO_CONTEXT),
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10",
            ),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10"),
        ),
        (
            "permessage-deflate; server_max_window_bits=\"8\"",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=8",
            ),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=8"),
        ),
        // §7.1.2.1: accepting the parameter means answering with it, the same value or less.
        (
            "permessage-deflate; server_max_window_bits=15",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15",
            ),
            Some("permessage-deflate; server_max_window_bits=15"),
        ),
        // §5.2: two offers; the first one is accepted.
        (
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
             permessage-deflate; client_max_window_bits",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10",
            ),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10"),
        ),
        // A first offer that cannot be honoured is passed over for the next.
        (
            "permessage-deflate; server_max_window_bits=7, permessage-deflate",
            Some(NO_CONTEXT),
            Some("permessage-deflate"),
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=12",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9",
            ),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9",
            ),
        ),
    ];
    for (offer, default, context) in cases {
        assert_eq!(answer(&[offer], DEFAULT).as_deref(), *default, "{offer}");
        assert_eq!(answer(&[offer], CONTEXT).as_deref(), *context, "{offer}");
    }
}

#[test]
fn offers_that_cannot_be_honoured_are_declined() {
    for offer in [
        "",
        "x-webkit-deflate-frame",
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=1e1",
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate; server_max_window_bits=\"\"",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=99999999999999999999",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"x\"",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; ; server_no_context_takeover",
        "permessage-deflate;;",
    ] {
        assert_eq!(answer(&[offer], DEFAULT), None, "{offer:?}");
        assert_eq!(answer(&[offer], CONTEXT), None, "{offer:?}");
    }
}

#[test]
fn other_extensions_and_several_headers() {
    let got = answer(
        &[
            "foo; bar=\"a,b\", x-webkit-deflate-frame",
            "permessage-deflate",
        ],
        DEFAULT,
    );
    assert_eq!(got.as_deref(), Some(NO_CONTEXT));
    let spaced = "  PerMessage-Deflate ;  Client_Max_Window_Bits  ;server_max_window_bits = 12 ";
    let params = negotiate([spaced], DEFAULT).expect("accepted");
    assert_eq!(params.server_window_bits, 12);
    assert_eq!(answer(&[], DEFAULT), None);
}

#[test]
fn quoted_values_are_unescaped_and_must_be_tokens() {
    assert_eq!(unquote("\"1\\1\"").as_deref(), Some("11"));
    assert_eq!(unquote("\"a b\""), None);
    assert_eq!(unquote("\"a\"b\""), None);
    assert_eq!(unquote("\"\\\""), None);
    assert_eq!(unquote("tok"), Some("tok".into()));
}
