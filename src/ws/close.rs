//! Close codes: which are valid on the wire (RFC 6455 §7.4 and the IANA registry), and which
//! code answers which failure.

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The server is going away (shutdown).
pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;
/// No status code was present in the client's close frame (never sent on the wire).
pub const NO_STATUS: u16 = 1005;
/// The TCP connection ended without a close frame (never sent on the wire).
pub const ABNORMAL: u16 = 1006;
pub const INVALID_DATA: u16 = 1007;
pub const POLICY: u16 = 1008;
pub const TOO_BIG: u16 = 1009;
/// The backend failed to handle an event.
pub const INTERNAL_ERROR: u16 = 1011;

/// Codes a peer may put in a close frame: the registered ones that are meant for the wire,
/// plus the ranges for libraries (3000-3999) and applications (4000-4999).
pub fn valid_on_wire(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Codes wscgi (or a backend through it) may send. Same set as what a peer may send.
pub fn valid_to_send(code: u16) -> bool {
    valid_on_wire(code)
}

/// The code and reason of a client's close frame whose code is valid on the wire but unknown
/// to tungstenite (1014, registered after it was written): tungstenite would answer it with
/// 1002 as if it were a violation, so wscgi echoes it itself.
pub fn unknown_to_tungstenite(payload: &[u8]) -> Option<(u16, &str)> {
    use tungstenite::protocol::frame::coding::CloseCode;
    let (code, reason) = payload.split_first_chunk::<2>()?;
    let code = u16::from_be_bytes(*code);
    if !valid_on_wire(code) || CloseCode::from(code).is_allowed() {
        return None;
    }
    Some((code, std::str::from_utf8(reason).ok()?))
}

/// A close frame carries at most 123 bytes of reason; cut at a character boundary.
pub fn truncate_reason(reason: &str) -> String {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason.to_string();
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

/// The close code and reason that answer a failed read, or `None` when the failure was the
/// transport itself (then there is nobody to tell; the close event says 1006).
pub fn for_read_error(err: &tungstenite::Error) -> Option<(u16, String)> {
    use tungstenite::Error;
    match err {
        Error::Protocol(e) => Some((
            PROTOCOL_ERROR,
            truncate_reason(&format!("protocol error: {e}")),
        )),
        Error::Utf8(_) => Some((INVALID_DATA, "invalid UTF-8 in text message".to_string())),
        Error::Capacity(_) => Some((TOO_BIG, "message too big".to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        for ok in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(valid_on_wire(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            assert!(!valid_on_wire(bad), "{bad}");
        }
    }

    #[test]
    fn only_codes_tungstenite_misjudges_are_taken_over() {
        assert_eq!(
            unknown_to_tungstenite(b"\x03\xf6gone"),
            Some((1014, "gone"))
        );
        assert_eq!(unknown_to_tungstenite(b"\x03\xf6"), Some((1014, "")));
        for known in [1000u16, 1002, 1012, 1013, 3000, 4999] {
            assert_eq!(
                unknown_to_tungstenite(&known.to_be_bytes()),
                None,
                "{known}"
            );
        }
        for invalid in [999u16, 1004, 1005, 1015, 1016, 2999, 5000] {
            assert_eq!(
                unknown_to_tungstenite(&invalid.to_be_bytes()),
                None,
                "{invalid}"
            );
        }
        assert_eq!(unknown_to_tungstenite(b"\x03"), None);
        assert_eq!(
            unknown_to_tungstenite(b"\x03\xf6\xff"),
            None,
            "reason not UTF-8"
        );
    }

    #[test]
    fn reason_is_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123);
        assert_eq!(cut.len() % 2, 0);
    }
}
