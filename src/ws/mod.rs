//! The WebSocket side: handshake, connection state machine, framing and close codes.

mod answer;
mod boundaries;
pub mod claim;
pub mod close;
pub mod conn;
pub mod direct;
mod ending;
pub mod frame;
pub mod handshake;
mod limits;
pub mod message;
mod opening;
pub mod outbuf;
pub mod queue;
mod reading;
mod replay;
pub mod resume_query;
pub mod resuming;
mod sending;
mod sent;
pub mod session;
mod timers;
pub mod transport;
mod utf8_stream;
mod wire;
