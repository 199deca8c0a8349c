//! Reading WebSocket frames from an open connection: messages become events, a close frame
//! ends the connection, protocol violations are answered with the right close code.

use std::io::{self, Read, Write};
use std::time::Instant;

use log::{debug, info};
use tungstenite::{Bytes, Message};

use super::boundaries::Boundaries;
use super::conn::{Backlog, Conn, Limits, Phase, Ping, Readable};
use super::inflow::Inflow;
use crate::events::EventKind;
use crate::ws::close;
use crate::ws::frame;
use crate::ws::outbuf::{Full, OutBuf};
use crate::ws::transport::Transport;

impl Conn {
    pub(super) fn read_frames(&mut self, limits: &Limits, how: Readable) {
        self.read_until_blocked(limits, how);
        self.settle_inflow();
    }

    /// Counts the compressed messages read and lets an idle inflow go, and the record with it
    /// when nothing else needs it (see `ws::deflate_slot`).
    pub(super) fn settle_inflow(&mut self) {
        let (wire, inflated) = self.deflate.settle();
        self.traffic.deflate.wire_in += wire;
        self.traffic.deflate.inflated_in += inflated;
    }

    fn read_until_blocked(&mut self, limits: &Limits, how: Readable) {
        let mut drained = match how {
            Readable::Data => Some(false),
            Readable::Unsure => None,
        };
        // Until the socket says WouldBlock, stopping (at a limit) leaves bytes unread.
        self.backlog = Backlog::Unread;
        loop {
            // Backpressure holds an open client's messages in its socket. A closing one sends
            // nothing we keep (messages after our close frame are dropped), and its close reply
            // must be read, so it is never paused.
            let waiting = self.events.waiting();
            let paused = waiting >= limits.max_pending || (limits.saturated.get() && waiting > 0);
            if paused && self.is_open() {
                return;
            }
            let inflow = self.deflate.busy(limits).map(|d| d.inflow());
            let (wire, ws, frames) = match &mut self.phase {
                Phase::Open {
                    wire,
                    reader,
                    frames,
                    ..
                } => (wire, reader.get(limits.ws_config), Some(frames)),
                Phase::Closing { wire, ws, .. } => (wire, &mut **ws, None),
                _ => return,
            };
            let result = ws.read(&mut Io {
                sock: &mut wire.sock,
                out: &mut wire.out,
                frames,
                inflow,
                drained: drained.as_mut(),
            });
            match result {
                Ok(msg) => self.on_message(msg),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Every frame before a compressed message that broke the rules has been
                    // read by now (see `ws::inflow`).
                    if let Some(v) = self.deflate.violation() {
                        let (code, reason) = (v.close_code(), v.to_string());
                        info!("{}: closing with {code}: {reason}", self.id());
                        return self.fail(code, &reason);
                    }
                    // tungstenite checks UTF-8 only in complete frames; the tracker has seen
                    // bad bytes in one still arriving, and RFC 6455 §8.1 says fail now.
                    // Every complete frame before them has been read by now.
                    if let Phase::Open { frames, .. } = &self.phase
                        && frames.invalid_utf8()
                    {
                        let (code, reason) = (close::INVALID_DATA, "invalid UTF-8 in text message");
                        info!("{}: closing with {code}: {reason}", self.id());
                        return self.fail(code, reason);
                    }
                    self.backlog = Backlog::Drained;
                    return self.rest_reader();
                }
                Err(e) => return self.on_read_error(&e),
            }
        }
    }

    /// Reads on where an earlier read stopped at a limit (`--max-pending`, saturation) that may
    /// have lifted since: an event left for the backend, a reply came, saturation ended. The
    /// bytes are in the socket already and an edge-triggered poll would not report them again;
    /// a connection read dry is woken by the poll when more comes. Says whether it read.
    pub fn read_on(&mut self, limits: &Limits) -> bool {
        let stopped = self.stopped_reading();
        if stopped {
            self.read_frames(limits, Readable::Unsure);
            self.flush();
        }
        stopped
    }

    /// Reading stopped at a limit, with bytes perhaps left in the socket (see [`Conn::read_on`]).
    pub fn stopped_reading(&self) -> bool {
        self.is_open() && self.backlog == Backlog::Unread
    }

    /// The socket ran dry: let tungstenite's frame reader go if every byte read belongs to a
    /// complete frame and no message is half received (see `ws::reader`).
    fn rest_reader(&mut self) {
        if let Phase::Open { reader, frames, .. } = &mut self.phase
            && frames.at_rest()
        {
            reader.rest();
        }
    }

    /// A message from the client; `packed`: compressed still, for the worker that delivers it
    /// to inflate (and count; see `ws::offload`), and then whether it is binary.
    fn received(&mut self, data: Bytes, binary: bool, packed: Option<bool>) {
        self.last_message = Instant::now();
        self.traffic.messages_in += 1;
        match packed {
            Some(binary) => self.events.push_packed(EventKind::Message { data, binary }),
            None => {
                self.traffic.bytes_in += data.len() as u64;
                self.events.push(EventKind::Message { data, binary });
            }
        }
    }

    fn on_message(&mut self, msg: Message) {
        self.last_heard = Instant::now();
        if let Phase::Open { ping, .. } = &mut self.phase {
            *ping = Ping::Idle;
        }
        let closing = matches!(self.phase, Phase::Closing { .. });
        let packed = match (&msg, self.deflate.record()) {
            (Message::Text(_) | Message::Binary(_), Some(d)) => d.take_packed(),
            _ => None,
        };
        match msg {
            Message::Text(text) if !closing => self.received(Bytes::from(text), false, None),
            Message::Binary(data) if !closing => self.received(data, true, packed),
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(f) => (u16::from(f.code), f.reason.to_string()),
                    None => (close::NO_STATUS, String::new()),
                };
                self.peer_closed(code, reason);
            }
            // Pings are answered by tungstenite; data after our close frame is dropped.
            _ => {}
        }
    }

    /// The client sent a close frame: tungstenite queued the reply; send it and finish. A code
    /// tungstenite does not know is echoed by wscgi instead (see `close::unknown_to_tungstenite`).
    fn peer_closed(&mut self, mut code: u16, mut reason: String) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Open {
                mut wire,
                reader,
                frames,
                ..
            } => {
                let mut ws = reader.into_closing();
                let payload = frames.close_payload().unwrap_or_default();
                match close::unknown_to_tungstenite(payload) {
                    Some((sent, why)) if code == close::PROTOCOL_ERROR => {
                        (code, reason) = (sent, why.to_string());
                        // Always fits: control frames have room beyond --max-outbuf.
                        let _ = wire.out.push(frame::encode(frame::OP_CLOSE, payload));
                    }
                    _ => {
                        let _ = ws.flush(&mut Io {
                            sock: &mut wire.sock,
                            out: &mut wire.out,
                            frames: None,
                            inflow: None,
                            drained: None,
                        });
                    }
                }
                self.phase = Phase::Finishing {
                    wire,
                    since: Instant::now(),
                };
                self.ended(code, reason);
            }
            Phase::Closing { wire, .. } => {
                self.phase = Phase::Finishing {
                    wire,
                    since: Instant::now(),
                };
            }
            other => self.phase = other,
        }
    }

    fn on_read_error(&mut self, err: &tungstenite::Error) {
        use tungstenite::error::ProtocolError::ResetWithoutClosingHandshake;
        let violation = match err {
            tungstenite::Error::Protocol(ResetWithoutClosingHandshake) => None,
            other => close::for_read_error(other),
        };
        match violation {
            Some((code, reason)) => {
                info!("{}: closing with {code}: {reason}", self.id());
                self.fail(code, &reason);
            }
            None => {
                debug!("{}: connection dropped: {err}", self.id());
                self.drop_socket(close::ABNORMAL, "");
            }
        }
    }
}

/// What tungstenite reads from and writes to: reads come from the socket, writes go into the
/// connection's queue (so they are ordered with our own frames and never block).
pub(super) struct Io<'a> {
    pub sock: &'a mut Transport,
    pub out: &'a mut OutBuf,
    /// Sees every byte tungstenite reads, while the connection is open.
    pub frames: Option<&'a mut Boundaries>,
    /// With permessage-deflate: the socket's bytes go through here first.
    pub inflow: Option<&'a mut Inflow>,
    /// Set by a short read: the socket had no more, so the next read would only fail with
    /// WouldBlock. Edge-triggered polling reports any byte (or end of stream) that arrives
    /// later, so that syscall (one per wake-up and connection) is skipped, as tokio does.
    /// `None` when the poll reported more than data (see [`Readable`]).
    pub drained: Option<&'a mut bool>,
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inflow.as_deref_mut() {
            None => self.read_socket(buf)?,
            // The socket's bytes go in, tungstenite's come out; `buf` serves for both. A read
            // that gave tungstenite nothing yet (part of a compressed message) reads on.
            Some(inflow) => loop {
                match inflow.read(buf) {
                    0 if inflow.violation().is_some() => {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    0 => {}
                    n => break n,
                }
                let n = read_socket(self.sock, self.drained.as_deref_mut(), buf)?;
                if n == 0 {
                    break 0;
                }
                inflow.feed(&buf[..n]);
            },
        };
        if let Some(frames) = &mut self.frames {
            frames.feed(&buf[..n]);
        }
        Ok(n)
    }
}

impl Io<'_> {
    fn read_socket(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_socket(self.sock, self.drained.as_deref_mut(), buf)
    }
}

fn read_socket(
    sock: &mut Transport,
    drained: Option<&mut bool>,
    buf: &mut [u8],
) -> io::Result<usize> {
    if drained.as_deref() == Some(&true) {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let n = sock.read(buf)?;
    if let Some(drained) = drained {
        *drained = n > 0 && n < buf.len() && sock.short_read_is_dry();
    }
    Ok(n)
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.out.push(Bytes::copy_from_slice(buf)) {
            Ok(()) => Ok(buf.len()),
            Err(Full) => Err(io::Error::other("outgoing buffer full")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
