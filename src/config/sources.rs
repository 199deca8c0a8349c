//! Where option values come from: the command line first, then the `WSCGI_*` environment.

use getopts::Matches;

use super::error::CliError;
use super::values::{ValueError, boolean};

pub(super) fn env_name(option: &str) -> String {
    format!("WSCGI_{}", option.to_ascii_uppercase().replace('-', "_"))
}

/// Where option values come from: the command line first, then the environment.
pub(super) struct Sources<'a> {
    pub m: &'a Matches,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Sources<'_> {
    /// Repeats of `--pass-header` are joined into one comma list; getopts has
    /// already refused repeats of every other option.
    pub fn raw(&self, name: &str) -> Option<(String, String)> {
        let given = self.m.opt_strs(name);
        if !given.is_empty() {
            return Some((format!("--{name}"), given.join(",")));
        }
        let var = env_name(name);
        (self.env)(&var).map(|v| (var, v))
    }

    /// A flag: given on the command line, or its `WSCGI_*` variable says yes.
    pub fn flag(&self, name: &str) -> Result<bool, CliError> {
        if self.m.opt_present(name) {
            return Ok(true);
        }
        let var = env_name(name);
        match (self.env)(&var) {
            None => Ok(false),
            Some(v) => boolean(&v).map_err(|error| CliError::Value { origin: var, error }),
        }
    }

    pub fn get<T>(
        &self,
        name: &str,
        default: T,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Result<T, CliError> {
        match self.raw(name) {
            None => Ok(default),
            Some((origin, v)) => parse(&v).map_err(|error| CliError::Value { origin, error }),
        }
    }
}
