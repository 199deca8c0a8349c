//! The WebSocket side: handshake, connection state machine, framing, close codes, and
//! permessage-deflate.

mod answer;
mod boundaries;
pub mod claim;
pub mod close;
pub mod compress;
pub mod conn;
pub mod deflate;
pub mod deflate_slot;
pub mod direct;
mod ending;
pub mod extensions;
pub mod frame;
mod frame_head;
pub mod handshake;
pub mod inflate;
pub mod inflow;
mod limits;
pub mod message;
pub mod offload;
mod opening;
pub mod outbuf;
pub mod queue;
mod reader;
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
