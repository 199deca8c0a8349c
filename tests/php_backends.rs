//! The same PHP chat room (examples/chat/chat.php) under every way wscgi can run PHP: php-cgi
//! as a `cgi:` program, php-fpm over TCP and over a unix socket as `fastcgi://`, and nginx in
//! front of php-fpm as an `http://` backend. Each test starts its own php-fpm (and nginx) on
//! 127.0.0.1 or in a temp dir and kills them on drop. A missing program skips loudly, or fails
//! when `CI` is set.

#[path = "support/php.rs"]
mod php;
mod support;

use php::{DEMO, Fpm, Listen, Nginx};
use support::*;
use tungstenite::Message;

/// php-fpm keeps a child busy per kept FastCGI connection: fewer workers than its 4 children.
const WORKERS: [&str; 2] = ["--workers", "2"];

#[test]
fn php_cgi_chat() {
    php::block_sigchld();
    if php::require("php-cgi", "the php-cgi chat").is_none() {
        return;
    }
    let server = Wscgi::start(&format!("cgi:{DEMO}/chat-php-cgi.sh"), &WORKERS);
    chat(&server, "php-cgi");
}

#[test]
fn php_fpm_tcp_chat() {
    php::block_sigchld();
    let Some(fpm) = Fpm::start(Listen::Tcp) else {
        return;
    };
    let server = Wscgi::start(&fpm.backend(&format!("{DEMO}/chat.php")), &WORKERS);
    chat(&server, "php-fpm over TCP");
}

#[test]
fn php_fpm_unix_socket_chat() {
    php::block_sigchld();
    let Some(fpm) = Fpm::start(Listen::Unix) else {
        return;
    };
    let backend = fpm.backend(&format!("{DEMO}/chat.php"));
    assert!(backend.starts_with("fastcgi://unix:/"), "{backend}");
    let server = Wscgi::start(&backend, &WORKERS);
    chat(&server, "php-fpm over a unix socket");
}

#[test]
fn nginx_php_fpm_chat() {
    php::block_sigchld();
    let Some(fpm) = Fpm::start(Listen::Unix) else {
        return;
    };
    let Some(nginx) = Nginx::start(DEMO, &fpm.pass()) else {
        return;
    };
    let backend = format!("http://127.0.0.1:{}/chat.php", nginx.port);
    let server = Wscgi::start(&backend, &WORKERS);
    chat(&server, "nginx + php-fpm");
}

/// alice and bob join, bob talks (both hear it), bob leaves (alice hears it).
fn chat(server: &Wscgi, setup: &str) {
    let mut alice = connect(&server.ws_url("/chat?name=alice"));
    assert_eq!(recv_text(&mut alice), "* alice joined", "{setup}");
    let mut bob = connect(&server.ws_url("/chat?name=bob"));
    assert_eq!(recv_text(&mut alice), "* bob joined", "{setup}");
    assert_eq!(recv_text(&mut bob), "* bob joined", "{setup}");

    bob.send(Message::text("hi alice, ça va?")).unwrap();
    let line = "bob: hi alice, ça va?";
    assert_eq!(
        recv_text(&mut bob),
        line,
        "{setup}: the sender hears itself"
    );
    assert_eq!(recv_text(&mut alice), line, "{setup}");

    bob.close(None).unwrap();
    let _ = recv_close(&mut bob);
    assert_eq!(recv_text(&mut alice), "* bob left", "{setup}");

    // A name is cleaned by the script, whichever way PHP runs.
    let _carol = connect(&server.ws_url("/chat?room=1&name=%3Ccarol%3E"));
    assert_eq!(recv_text(&mut alice), "* carol joined", "{setup}");
}
