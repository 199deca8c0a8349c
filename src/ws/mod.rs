//! The WebSocket side: handshake, connection state machine, framing and close codes.

pub mod close;
pub mod conn;
pub mod frame;
pub mod handshake;
pub mod outbuf;
pub mod queue;
