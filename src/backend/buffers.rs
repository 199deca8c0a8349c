//! The buffers under one kept-alive HTTP backend connection (`backend::tcp`): small while
//! events are small, larger only for a large reply, and small again after it.
//!
//! ureq's own buffers are 128 KiB each way per connection, zero-filled when the connection is
//! made: with a connection kept per worker, 2 MiB resident for events of a few hundred bytes.
//! Here input starts at [`INPUT`] and doubles whenever a read fills it (a large body, or a head
//! that does not fit), up to [`INPUT_MAX`]; it returns to [`INPUT`] when the next request
//! starts. Output is [`OUTPUT`]: ureq writes a request's head a line at a time and its body in
//! chunks, so only the longest header line must fit (handshake heads are at most 8 KiB, meta
//! values 4 KiB).
//!
//! A request's head is held back until its body is written behind it ([`GrowingBuffers::queue`]):
//! one send and one TCP segment per event instead of two, and one wake-up of the backend.

use ureq::unversioned::transport::Buffers;

/// Where input starts, and returns to.
const INPUT: usize = 16 * 1024;
/// The most input grows to: what ureq's default buffer was.
const INPUT_MAX: usize = 128 * 1024;
const OUTPUT: usize = 16 * 1024;
/// ureq reads a request body into free input space before framing it (as its own buffers do).
const MIN_TMP: usize = 10 * 1024;
/// A head is held back only if at least this much output is left for the body behind it.
const HOLD_ROOM: usize = 1024;

#[derive(Debug, Default)]
pub struct GrowingBuffers {
    input: Vec<u8>,
    /// `input[consumed..filled]` is read and not yet used by ureq.
    consumed: usize,
    filled: usize,
    output: Vec<u8>,
    /// The last consume used something: ureq may parse again without reading.
    progress: bool,
    /// `output[..held]` is a complete request head waiting for its body (or for the first
    /// read, when there is none); ureq writes after it.
    held: usize,
}

impl GrowingBuffers {
    /// Makes room for `want` more input bytes if it can: reuses consumed space first, then
    /// grows (doubling, never past [`INPUT_MAX`]; ureq refuses a head over its own limit, and
    /// consumes a body as it reads).
    fn room(&mut self, want: usize) {
        if self.input.is_empty() {
            self.input = vec![0; INPUT];
        }
        if self.input.len() - self.filled >= want {
            return;
        }
        self.input.copy_within(self.consumed..self.filled, 0);
        self.filled -= self.consumed;
        self.consumed = 0;
        let free = self.input.len() - self.filled;
        if free < want {
            let grown = (self.input.len() * 2)
                .max(self.filled + want)
                .min(INPUT_MAX);
            self.input.resize(grown.max(self.input.len()), 0);
        }
    }
}

impl GrowingBuffers {
    /// ureq wrote `amount` bytes to transmit: says what to send now, all that is held back
    /// included, or `None` to hold them. Only a request's first write is held, and only if it is
    /// a whole head (a head ends with an empty line; a header value holds no CR or LF, so a
    /// part of a head never does) with room for a body after it.
    pub fn queue(&mut self, amount: usize) -> Option<&[u8]> {
        let end = (self.held + amount).min(self.output.len());
        let whole_head = self.held == 0 && self.output[..end].ends_with(b"\r\n\r\n");
        if whole_head && self.output.len() - end >= HOLD_ROOM {
            self.held = end;
            return None;
        }
        self.held = 0;
        Some(&self.output[..end])
    }

    /// What is held back, to send before waiting for the reply; nothing is held after this.
    pub fn take_held(&mut self) -> &[u8] {
        let held = std::mem::take(&mut self.held);
        &self.output[..held]
    }
}

impl Buffers for GrowingBuffers {
    fn output(&mut self) -> &mut [u8] {
        // A new request: a large reply's input is given back (nothing is left unread between
        // requests on a kept connection, or it would not have been kept).
        if self.consumed == self.filled && self.input.len() > INPUT {
            self.input = vec![0; INPUT];
            (self.consumed, self.filled) = (0, 0);
        }
        if self.output.is_empty() {
            self.output = vec![0; OUTPUT];
        }
        &mut self.output[self.held..]
    }

    fn input(&self) -> &[u8] {
        &self.input[self.consumed..self.filled]
    }

    fn input_append_buf(&mut self) -> &mut [u8] {
        // A full buffer grows: the read before this one filled it, so more is coming.
        if self.filled == self.input.len() {
            self.room(1);
        } else if self.input.is_empty() {
            self.room(0);
        }
        &mut self.input[self.filled..]
    }

    fn input_appended(&mut self, amount: usize) {
        self.filled = (self.filled + amount).min(self.input.len());
        // Reads that fill what was free are a large body: let the next one be larger.
        if self.filled == self.input.len() && self.input.len() < INPUT_MAX {
            self.room(self.input.len());
        }
    }

    fn input_consume(&mut self, amount: usize) {
        self.progress = amount > 0;
        self.consumed = (self.consumed + amount).min(self.filled);
        if self.consumed == self.filled {
            (self.consumed, self.filled) = (0, 0);
        }
    }

    fn tmp_and_output(&mut self) -> (&mut [u8], &mut [u8]) {
        self.room(MIN_TMP);
        if self.output.is_empty() {
            self.output = vec![0; OUTPUT];
        }
        (
            &mut self.input[self.filled..],
            &mut self.output[self.held..],
        )
    }

    fn can_use_input(&self) -> bool {
        self.filled > self.consumed && self.progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `bytes` the way a transport does.
    fn read_in(b: &mut GrowingBuffers, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let buf = b.input_append_buf();
            let n = buf.len().min(bytes.len());
            assert!(n > 0, "no room to read into");
            buf[..n].copy_from_slice(&bytes[..n]);
            b.input_appended(n);
            bytes = &bytes[n..];
        }
    }

    #[test]
    fn small_until_a_large_reply_and_small_again_after_it() {
        let mut b = GrowingBuffers::default();
        assert_eq!(b.output().len(), OUTPUT);
        read_in(&mut b, b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(b.input.len(), INPUT);
        b.input_consume(19);
        assert!(b.input().is_empty());

        // A head larger than the buffer, never consumed in between: it all stays readable.
        let head: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        read_in(&mut b, &head);
        assert_eq!(b.input(), &head[..]);
        assert!(b.input.len() >= 100_000 && b.input.len() <= INPUT_MAX);
        b.input_consume(head.len());

        b.output();
        assert_eq!(b.input.len(), INPUT, "given back at the next request");
    }

    #[test]
    fn consumed_space_is_reused_before_growing() {
        let mut b = GrowingBuffers::default();
        read_in(&mut b, &[1; 1000]);
        b.input_consume(900);
        let room = b.input_append_buf().len();
        assert_eq!(room, INPUT - 1000, "nothing moved while there is room");
        read_in(&mut b, &vec![2; INPUT - 1000]);
        assert_eq!(b.input().len(), INPUT - 900);
        assert_eq!(b.input()[..100], [1; 100]);
        let (tmp, out) = b.tmp_and_output();
        assert!(tmp.len() >= MIN_TMP && out.len() == OUTPUT);
        assert_eq!(b.input()[..100], [1; 100], "kept across the move");
    }

    /// Writes `bytes` the way ureq does, and queues them.
    fn write_out(b: &mut GrowingBuffers, bytes: &[u8]) -> Option<Vec<u8>> {
        b.output()[..bytes.len()].copy_from_slice(bytes);
        b.queue(bytes.len()).map(<[u8]>::to_vec)
    }

    #[test]
    fn a_head_leaves_with_its_body() {
        let mut b = GrowingBuffers::default();
        let head = b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\n";
        assert_eq!(write_out(&mut b, head), None, "held for the body");
        let sent = write_out(&mut b, b"hi").expect("head and body go together");
        assert_eq!(sent, [&head[..], b"hi"].concat());
        assert!(b.take_held().is_empty());

        // No body: the head waits for the read, which takes it.
        assert_eq!(write_out(&mut b, head), None);
        assert_eq!(b.take_held(), head);
        assert!(b.take_held().is_empty(), "taken once");
    }

    #[test]
    fn part_of_a_head_and_a_full_buffer_go_at_once() {
        let mut b = GrowingBuffers::default();
        let part = b"POST / HTTP/1.1\r\nhost: x\r\n";
        assert_eq!(write_out(&mut b, part).as_deref(), Some(&part[..]));
        // A whole head that leaves no room for a body after it.
        let mut big = vec![b'a'; OUTPUT - HOLD_ROOM + 1];
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(write_out(&mut b, &big), Some(big.clone()));
        // Body chunks after the first write are never held.
        write_out(&mut b, b"POST / HTTP/1.1\r\n\r\n");
        assert!(write_out(&mut b, b"x\r\n\r\n").is_some());
    }
}
