//! One connection's step when its socket is ready: finish the TCP connect, write the upgrade
//! request, read and check the `101`, then flush and read WebSocket frames, turning what happened
//! into [`Ev`]ents. Every failure ends the connection through [`Engine::finish`] with the reason
//! the scenarios count.

use std::io::{self, Read, Write};

use tungstenite::protocol::Role;
use tungstenite::{Bytes, Message, WebSocket};

use crate::client::{Conn, Engine, Ev, Phase};
use crate::timestamps::{TsStream, enable_timestamps, rx_time};

impl Engine {
    /// Advances connection `id`. A phase that completes drives the next one at once, since the
    /// data it needs (the `101`, frames sent along with it) may already be in the socket and no
    /// new readiness event would come for it.
    /// `plain`: the poll reported data only (no close, no error), so a short read means the
    /// socket is dry (see `TsStream::dry`).
    pub fn drive(
        &mut self,
        id: usize,
        (readable, plain): (bool, bool),
        writable: bool,
        out: &mut Vec<Ev>,
    ) {
        let Some(Some(conn)) = self.conns.get_mut(id) else {
            return;
        };
        let phase = std::mem::replace(&mut conn.phase, Phase::Gone);
        match phase {
            Phase::Connecting(stream) => {
                match stream.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => {
                        conn.phase = Phase::Connecting(stream);
                        return self.finish(id, format!("connect: {e}"));
                    }
                }
                match stream.peer_addr() {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        conn.phase = Phase::Connecting(stream);
                        return;
                    }
                    Err(e) => {
                        conn.phase = Phase::Connecting(stream);
                        return self.finish(id, format!("connect: {e}"));
                    }
                }
                let _ = stream.set_nodelay(true);
                if self.timestamps {
                    enable_timestamps(&stream);
                }
                let tls = match self.tls.as_ref().map(|t| t.session(&self.host)) {
                    None => None,
                    Some(Ok(session)) => Some(session),
                    Some(Err(e)) => {
                        conn.phase = Phase::Connecting(stream);
                        return self.finish(id, format!("TLS: {e}"));
                    }
                };
                let stream = TsStream {
                    inner: stream,
                    timestamps: self.timestamps,
                    rx_ns: 0,
                    dry: None,
                    tls,
                };
                conn.phase = Phase::Handshake {
                    stream,
                    written: 0,
                    buf: Vec::with_capacity(512),
                };
                self.drive(id, (true, false), true, out);
            }
            Phase::Handshake {
                mut stream,
                mut written,
                mut buf,
            } => {
                while written < self.request.len() {
                    match stream.write(&self.request[written..]) {
                        Ok(n) => written += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            conn.phase = Phase::Handshake {
                                stream,
                                written,
                                buf,
                            };
                            return self.finish(id, format!("write upgrade: {e}"));
                        }
                    }
                }
                let mut chunk = [0u8; 4096];
                let mut eof = false;
                loop {
                    match stream.read(&mut chunk) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            conn.phase = Phase::Handshake {
                                stream,
                                written,
                                buf,
                            };
                            return self.finish(id, format!("read upgrade: {e}"));
                        }
                    }
                }
                match parse_upgrade(&buf, &self.accept) {
                    Ok(Some(head_len)) => {
                        let rest = buf[head_len..].to_vec();
                        let ws = WebSocket::from_partially_read(
                            stream,
                            rest,
                            Role::Client,
                            Some(self.config),
                        );
                        conn.phase = Phase::Open(Box::new(ws));
                        self.pending -= 1;
                        self.open += 1;
                        out.push(Ev::Open {
                            id,
                            took: conn.started.elapsed(),
                        });
                        // Frames may have come with the 101.
                        self.drive(id, (true, false), false, out);
                    }
                    Ok(None) => {
                        conn.phase = Phase::Handshake {
                            stream,
                            written,
                            buf,
                        };
                        if eof {
                            self.finish(id, "closed during handshake".into());
                        } else if buf_len_of(&self.conns[id]) > 16 * 1024 {
                            self.finish(id, "upgrade response too large".into());
                        }
                    }
                    Err(why) => {
                        conn.phase = Phase::Handshake {
                            stream,
                            written,
                            buf,
                        };
                        self.finish(id, why);
                    }
                }
            }
            Phase::Open(mut ws) | Phase::Closing(mut ws) => {
                let closing = conn.closing_since.is_some();
                if writable {
                    match ws.flush() {
                        Ok(()) => {}
                        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        }
                        Err(e) => {
                            conn.phase = if closing {
                                Phase::Closing(ws)
                            } else {
                                Phase::Open(ws)
                            };
                            let why = if closing {
                                "closed".to_string()
                            } else {
                                format!("flush: {e}")
                            };
                            return self.finish(id, why);
                        }
                    }
                }
                let mut ended = None;
                if readable {
                    ws.get_mut().dry = plain.then_some(false);
                    loop {
                        match ws.read() {
                            Ok(Message::Text(t)) => out.push(Ev::Msg {
                                id,
                                rx_ns: rx_time(&ws),
                                data: Bytes::from(t),
                            }),
                            Ok(Message::Binary(b)) => out.push(Ev::Msg {
                                id,
                                rx_ns: rx_time(&ws),
                                data: b,
                            }),
                            Ok(Message::Close(frame)) => {
                                if !closing && ended.is_none() {
                                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                                    ended = Some(format!("server closed ({code})"));
                                }
                            }
                            Ok(_) => {}
                            Err(tungstenite::Error::Io(e))
                                if e.kind() == io::ErrorKind::WouldBlock =>
                            {
                                break;
                            }
                            Err(
                                tungstenite::Error::ConnectionClosed
                                | tungstenite::Error::AlreadyClosed,
                            ) => {
                                ended.get_or_insert_with(|| "closed".to_string());
                                break;
                            }
                            Err(e) => {
                                if closing {
                                    ended.get_or_insert_with(|| "closed".to_string());
                                } else {
                                    ended.get_or_insert_with(|| format!("read: {e}"));
                                }
                                break;
                            }
                        }
                    }
                }
                conn.phase = if closing {
                    Phase::Closing(ws)
                } else {
                    Phase::Open(ws)
                };
                if let Some(why) = ended {
                    self.finish(id, if closing { "closed".into() } else { why });
                }
            }
            Phase::Gone => {}
        }
    }
}

fn buf_len_of(conn: &Option<Conn>) -> usize {
    match conn {
        Some(Conn {
            phase: Phase::Handshake { buf, .. },
            ..
        }) => buf.len(),
        _ => 0,
    }
}

/// Ok(Some(head length)) for a valid `101`, Ok(None) while incomplete.
fn parse_upgrade(buf: &[u8], accept: &str) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("bad upgrade response: {e}")),
        Ok(httparse::Status::Complete(n)) => {
            let code = resp.code.unwrap_or(0);
            if code != 101 {
                return Err(format!("status {code}"));
            }
            let ok = resp.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("sec-websocket-accept") && h.value == accept.as_bytes()
            });
            if !ok {
                return Err("wrong Sec-WebSocket-Accept".into());
            }
            Ok(Some(n))
        }
    }
}
