//! What became of a data message handed to a connection: sent, kept for a client that is away,
//! or refused; and how much of its frame a direct write had already put on the socket.

use std::io;

/// How much of a message's frame reached the socket before the message entered the connection.
#[derive(Debug)]
pub enum Written {
    /// Nothing: the whole frame is queued.
    Nothing,
    /// A direct write (see `ws::direct`) took this many bytes, or failed.
    Directly(io::Result<usize>),
}

/// What became of a message a connection took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Queued for (or written to) the socket.
    Sent,
    /// Kept by a session waiting for its client; it gets the message when it resumes.
    Kept,
}

/// Why a message could not be queued for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is not (or no longer) open.
    NotOpen,
    /// Its outgoing buffer is full (or, waiting to resume, its `--resume-buffer`); it is
    /// being closed with 1008.
    SlowConsumer,
}
