//! The listening sockets: bound from the options, or adopted when someone else bound them
//! (systemd socket activation, tests); and the warning for a push API open to the network.

use std::net::SocketAddr;

use log::warn;
use mio::net::TcpListener;

use crate::config::Config;
use crate::error::Error;

/// Listening sockets bound by someone else.
#[derive(Debug, Default)]
pub struct Listeners {
    pub ws: Option<std::net::TcpListener>,
    pub push: Option<std::net::TcpListener>,
}

/// Warns loudly when the push API is reachable from the network by anyone.
pub(super) fn warn_if_exposed(config: &Config) {
    if push_api_exposed(config) {
        warn!(
            "THE PUSH API ON {} IS OPEN TO THE NETWORK WITHOUT --push-token: anyone who can reach it can \
             send to and close your clients",
            config.push_listen
        );
    }
}

pub(super) fn adopt(listener: std::net::TcpListener) -> Result<TcpListener, Error> {
    listener.set_nonblocking(true).map_err(Error::Setup)?;
    Ok(TcpListener::from_std(listener))
}

pub(super) fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).map_err(|source| Error::Bind { what, addr, source })
}

/// The push API can send to and close every client: bound beyond loopback without a token,
/// anyone who can reach it can.
fn push_api_exposed(config: &Config) -> bool {
    !config.push_listen.ip().is_loopback() && config.push_token.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_push_api_without_a_token_is_exposed() {
        let mut config = Config::for_backend("http://127.0.0.1:1/");
        assert!(!push_api_exposed(&config), "loopback");
        config.push_listen = "[::1]:8081".parse().unwrap();
        assert!(!push_api_exposed(&config), "IPv6 loopback");
        config.push_listen = "0.0.0.0:8081".parse().unwrap();
        assert!(push_api_exposed(&config), "all interfaces, no token");
        config.push_token = Some("t".into());
        assert!(!push_api_exposed(&config), "token set");
    }
}
