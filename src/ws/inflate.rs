//! Inflating one compressed message (RFC 7692 §7.2.2) with a hard bound: the output never
//! grows past the limit (`--max-message`), however small the input, so a compression bomb
//! costs at most one limit's worth of memory before it is refused. Pure.

use std::fmt;

use flate2::{Decompress, FlushDecompress, Status};

/// What RFC 7692 §7.2.2 has the sender remove from the end of every message.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The first allocation for a message's output; it doubles from there, up to the limit.
const FIRST_OUTPUT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The message inflates (or arrives) past the limit: close with 1009.
    TooBig,
    /// Not valid DEFLATE data: close with 1007.
    BadData,
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InflateError::TooBig => "compressed message too big",
            InflateError::BadData => "invalid compressed data",
        })
    }
}

/// A connection's inflater. Without context takeover it holds no memory between messages.
pub struct Inflater {
    limit: usize,
    /// The client keeps its LZ77 window between messages: so must we.
    takeover: bool,
    /// Present while a message is being inflated (or always, with context takeover).
    state: Option<Box<Decompress>>,
    out: Vec<u8>,
    /// Compressed bytes of the current message so far.
    wire: usize,
    /// The stream ended (a block with BFINAL): what follows in this message is ignored, as
    /// RFC 7692 §7.2.3.4 has the sender append an empty block there.
    ended: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("limit", &self.limit)
            .field("takeover", &self.takeover)
            .field("out", &self.out.len())
            .field("wire", &self.wire)
            .finish()
    }
}

impl Inflater {
    pub fn new(limit: usize, takeover: bool) -> Inflater {
        Inflater {
            limit,
            takeover,
            state: None,
            out: Vec::new(),
            wire: 0,
            ended: false,
        }
    }

    /// No message under way and no state kept (always so between messages without takeover).
    pub fn is_idle(&self) -> bool {
        self.state.is_none() && self.wire == 0 && self.out.capacity() == 0
    }

    /// The next compressed bytes of the current message.
    pub fn feed(&mut self, compressed: &[u8]) -> Result<(), InflateError> {
        self.wire += compressed.len();
        if self.wire > self.limit {
            return Err(InflateError::TooBig);
        }
        self.inflate(compressed, FlushDecompress::None)
    }

    /// The end of the message: its inflated bytes, and `compressed` bytes it took on the wire.
    pub fn finish(&mut self) -> Result<(Vec<u8>, usize), InflateError> {
        if !self.ended {
            self.inflate(&TAIL, FlushDecompress::Sync)?;
        }
        let wire = self.wire;
        let message = std::mem::take(&mut self.out);
        self.wire = 0;
        if self.ended || !self.takeover {
            self.state = None;
        }
        self.ended = false;
        Ok((message, wire))
    }

    fn inflate(&mut self, mut input: &[u8], flush: FlushDecompress) -> Result<(), InflateError> {
        let state = self
            .state
            .get_or_insert_with(|| Box::new(Decompress::new(false)));
        loop {
            if self.ended {
                return Ok(());
            }
            if self.out.len() == self.out.capacity() {
                if self.out.len() >= self.limit {
                    return probe_past_limit(state, input, flush);
                }
                let room = self.out.capacity().max(FIRST_OUTPUT);
                self.out
                    .reserve_exact(room.min(self.limit - self.out.len()));
            }
            let (in_before, out_before) = (state.total_in(), self.out.len());
            let status = state
                .decompress_vec(input, &mut self.out, flush)
                .map_err(|_| InflateError::BadData)?;
            input = &input[(state.total_in() - in_before) as usize..];
            let room = self.out.len() < self.out.capacity();
            let stuck = state.total_in() == in_before && self.out.len() == out_before;
            match status {
                Status::StreamEnd => self.ended = true,
                // Everything consumed and the output not full: nothing more is pending.
                _ if input.is_empty() && room => return Ok(()),
                _ if stuck && room => return Err(InflateError::BadData),
                _ => {}
            }
        }
    }
}

/// At the limit: any further output byte means the message is too big.
fn probe_past_limit(
    state: &mut Decompress,
    mut input: &[u8],
    flush: FlushDecompress,
) -> Result<(), InflateError> {
    let mut byte = [0u8; 1];
    loop {
        let (in_before, out_before) = (state.total_in(), state.total_out());
        let status = state
            .decompress(input, &mut byte, flush)
            .map_err(|_| InflateError::BadData)?;
        if state.total_out() > out_before {
            return Err(InflateError::TooBig);
        }
        input = &input[(state.total_in() - in_before) as usize..];
        if input.is_empty() || status == Status::StreamEnd || state.total_in() == in_before {
            return Ok(());
        }
    }
}

#[cfg(test)]
#[path = "inflate/tests.rs"]
mod tests;
