//! The quick-start demo in one process: the echo backend (examples/echo_backend.rs) on
//! 127.0.0.1:9000 serving a demo page, and wscgi in front of it on 127.0.0.1:8080 (push API on
//! 127.0.0.1:8081). Open http://127.0.0.1:9000/ and type: every message goes through wscgi to
//! the backend as one HTTP POST and comes back.
//!
//! `cargo run --release --example demo`

#[path = "echo_backend.rs"]
#[allow(dead_code)]
mod echo_backend;

use std::net::TcpListener;
use std::process::ExitCode;
use std::thread;

const BACKEND: &str = "127.0.0.1:9000";

fn main() -> ExitCode {
    let listener = match TcpListener::bind(BACKEND) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("demo: cannot listen on {BACKEND}: {e}");
            return ExitCode::FAILURE;
        }
    };
    thread::spawn(move || echo_backend::accept_forever(&listener));

    let config = wscgi::config::Config::for_backend(&format!("http://{BACKEND}/events"));
    wscgi::logger::init(log::LevelFilter::Info, false);
    let server = match wscgi::Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("wscgi demo: open http://{BACKEND}/ in a browser and type a message.");
    println!("  WebSocket clients: ws://{}/echo", server.ws_addr());
    println!(
        "  push API:          http://{}/connections/<id>",
        server.push_addr()
    );
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
