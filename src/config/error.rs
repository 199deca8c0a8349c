//! Why the command line or the environment was refused: one error type for every option, its
//! message naming the option (or `WSCGI_*` variable) that gave the bad value.

use std::fmt;

use super::values::ValueError;

#[derive(Debug)]
pub enum CliError {
    /// getopts' own message: unknown option, missing value.
    Options(String),
    /// Long name of an option given more than once.
    Duplicate(String),
    UnexpectedArgument(String),
    MissingBackend,
    /// One of `--tls-cert` and `--tls-key` without the other (the one given).
    TlsHalf(String),
    /// TLS options given to a build without the `tls` feature (the option given).
    TlsNotBuilt(String),
    /// `origin` is `--name` or `WSCGI_NAME`, whichever supplied the value.
    Value {
        origin: String,
        error: ValueError,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Options(msg) => f.write_str(msg),
            CliError::Duplicate(name) => write!(f, "--{name} given more than once"),
            CliError::UnexpectedArgument(arg) => write!(f, "unexpected argument {arg:?}"),
            CliError::MissingBackend => {
                f.write_str("missing --backend BACKEND or --route PREFIX=BACKEND")
            }
            CliError::TlsHalf(origin) => {
                write!(
                    f,
                    "{origin}: --tls-cert and --tls-key must be given together"
                )
            }
            CliError::TlsNotBuilt(origin) => write!(
                f,
                "{origin}: this wscgi was built without TLS support; build it with \
                 `cargo build --release --features tls`, or put a TLS proxy in front"
            ),
            CliError::Value { origin, error } => write!(f, "{origin}: {error}"),
        }
    }
}

// No `source()`: Display already includes the ValueError, and reporters that
// walk the chain would print it twice.
impl std::error::Error for CliError {}
