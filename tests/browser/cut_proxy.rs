//! A TCP proxy for tests/browser_resume.rs that can cut the network: every connection through
//! it is forwarded byte for byte to `upstream` until [`CutProxy::cut`] shuts all of them down
//! (no close frame either way, as when Wi-Fi blinks) and turns new ones away, until
//! [`CutProxy::heal`]. Threads: one accepting, two per connection; all end when the proxy is
//! dropped.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

struct Shared {
    cut: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every connection forwarded so far (clones), to shut them down at a cut.
    open: Mutex<Vec<(TcpStream, TcpStream)>>,
}

pub struct CutProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl CutProxy {
    pub fn start(upstream: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let state = shared.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if state.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if state.cut.load(Ordering::SeqCst) {
                    // The network is down: the connection attempt fails.
                    drop(client);
                    continue;
                }
                if let Err(e) = forward(client, upstream, &state) {
                    eprintln!("cut proxy: {e}");
                }
            }
        });
        CutProxy { addr, shared }
    }

    /// Ends every forwarded connection at once (both directions, both sides) and refuses new
    /// ones until [`CutProxy::heal`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        for (a, b) in self.shared.open.lock().unwrap().drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }

    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accepting thread so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn forward(client: TcpStream, upstream: SocketAddr, state: &Shared) -> io::Result<()> {
    let server = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    state
        .open
        .lock()
        .unwrap()
        .push((client.try_clone()?, server.try_clone()?));
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    thread::spawn(move || pipe(client, server));
    thread::spawn(move || pipe(s2, c2));
    Ok(())
}

/// Copies `from` to `to` until either ends, then ends both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
