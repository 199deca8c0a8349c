//! The resume parameters of a WebSocket URL (`wscgi-resume=KEY`, `wscgi-received=N`): checked
//! and taken out of the request target, so the key (a secret) never reaches the backend. Pure.

use std::fmt;

pub const KEY_PARAM: &str = "wscgi-resume";
pub const RECEIVED_PARAM: &str = "wscgi-received";
/// 22 characters of base64 are 132 bits: room for the 128 random bits the client must use.
pub const KEY_MIN: usize = 22;
pub const KEY_MAX: usize = 64;

/// What a client with resume parameters asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeRequest {
    /// A new session that may be resumed later with this key.
    Start { key: String },
    /// Continue the session with this key; the client has `received` of its messages.
    Resume { key: String, received: u64 },
}

/// Why the resume parameters were refused (a 400 at the handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeQueryError {
    /// The key is not 22 to 64 characters of URL-safe base64.
    BadKey,
    /// `wscgi-received` is not a decimal count.
    BadReceived,
    /// `wscgi-received` without `wscgi-resume`.
    ReceivedWithoutKey,
    /// A parameter given twice.
    Repeated(&'static str),
}

impl fmt::Display for ResumeQueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadKey => write!(
                f,
                "{KEY_PARAM} must be {KEY_MIN} to {KEY_MAX} characters of URL-safe base64"
            ),
            Self::BadReceived => write!(f, "{RECEIVED_PARAM} must be a decimal count"),
            Self::ReceivedWithoutKey => write!(f, "{RECEIVED_PARAM} without {KEY_PARAM}"),
            Self::Repeated(name) => write!(f, "{name} given more than once"),
        }
    }
}

impl std::error::Error for ResumeQueryError {}

/// Splits `target` (path and query) into the target the backend sees, without the resume
/// parameters, and what they asked for (`None`: there were none). Other parameters keep their
/// order and spelling.
pub fn take(target: &str) -> Result<(String, Option<ResumeRequest>), ResumeQueryError> {
    let Some((path, query)) = target.split_once('?') else {
        return Ok((target.to_string(), None));
    };
    let mut key = None;
    let mut received = None;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            KEY_PARAM => &mut key,
            RECEIVED_PARAM => &mut received,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        if slot.replace(value).is_some() {
            return Err(ResumeQueryError::Repeated(match name {
                KEY_PARAM => KEY_PARAM,
                _ => RECEIVED_PARAM,
            }));
        }
    }
    let request = match (key, received) {
        (None, None) => return Ok((target.to_string(), None)),
        (None, Some(_)) => return Err(ResumeQueryError::ReceivedWithoutKey),
        (Some(key), None) => ResumeRequest::Start {
            key: valid_key(key)?,
        },
        (Some(key), Some(n)) => ResumeRequest::Resume {
            key: valid_key(key)?,
            received: count(n)?,
        },
    };
    let stripped = match kept.is_empty() {
        true => path.to_string(),
        false => format!("{path}?{}", kept.join("&")),
    };
    Ok((stripped, Some(request)))
}

/// URL-safe base64 (RFC 4648 §5), padding allowed at the end only.
fn valid_key(key: &str) -> Result<String, ResumeQueryError> {
    let body = key.trim_end_matches('=');
    let ok = (KEY_MIN..=KEY_MAX).contains(&key.len())
        && key.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match ok {
        true => Ok(key.to_string()),
        false => Err(ResumeQueryError::BadKey),
    }
}

fn count(n: &str) -> Result<u64, ResumeQueryError> {
    match !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
        true => n.parse().map_err(|_| ResumeQueryError::BadReceived),
        false => Err(ResumeQueryError::BadReceived),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAA"; // 22

    fn start(key: &str) -> Option<ResumeRequest> {
        Some(ResumeRequest::Start { key: key.into() })
    }

    #[test]
    fn strips_only_the_resume_parameters() {
        let cases = [
            ("/chat", "/chat", None),
            ("/chat?name=a", "/chat?name=a", None),
            (&format!("/c?wscgi-resume={KEY}") as &str, "/c", start(KEY)),
            (
                &format!("/c?a=1&wscgi-resume={KEY}&b=&c"),
                "/c?a=1&b=&c",
                start(KEY),
            ),
            (
                &format!("/c?wscgi-received=7&x=%20&wscgi-resume={KEY}"),
                "/c?x=%20",
                Some(ResumeRequest::Resume {
                    key: KEY.into(),
                    received: 7,
                }),
            ),
        ];
        for (target, want, request) in cases {
            assert_eq!(take(target), Ok((want.to_string(), request)), "{target}");
        }
    }

    #[test]
    fn keys_of_another_shape_are_refused() {
        let long = "a".repeat(64);
        let padded = format!("{}==", &KEY[..20]);
        for good in [
            KEY,
            long.as_str(),
            "Zz09-_Zz09-_Zz09-_Zz09-_",
            padded.as_str(),
        ] {
            let target = format!("/?wscgi-resume={good}");
            assert!(take(&target).is_ok(), "{good}");
        }
        let too_long = "a".repeat(65);
        for bad in [
            &KEY[..21],
            too_long.as_str(),
            "AAAAAAAAAAAAAAAAAAAAA+",
            "AAAAAAAAAAAAAAAAAAAAA/",
            "AAAAAAAAAAAAAAAAAAAA%41",
            "AAAAAAAAAAAAAAAAAAA===",
            "AAAAAAAAAA=AAAAAAAAAAA",
            "",
        ] {
            let target = format!("/?wscgi-resume={bad}");
            assert_eq!(take(&target), Err(ResumeQueryError::BadKey), "{bad}");
        }
        assert_eq!(take("/?wscgi-resume"), Err(ResumeQueryError::BadKey));
    }

    #[test]
    fn counts_and_repeats() {
        let ok = |n: &str| take(&format!("/?wscgi-resume={KEY}&wscgi-received={n}"));
        for bad in ["", "-1", "+1", "1.0", "0x10", "18446744073709551616"] {
            assert_eq!(ok(bad), Err(ResumeQueryError::BadReceived), "{bad:?}");
        }
        assert!(ok("18446744073709551615").is_ok());
        assert!(ok("0").is_ok());
        assert_eq!(
            take("/?wscgi-received=1"),
            Err(ResumeQueryError::ReceivedWithoutKey)
        );
        let twice = format!("/?wscgi-resume={KEY}&wscgi-resume={KEY}");
        assert_eq!(take(&twice), Err(ResumeQueryError::Repeated(KEY_PARAM)));
    }
}
