//! A resumable session's memory: how many messages it was sent, and the last of them (the
//! replay ring), bounded in bytes. Pure: the connection feeds it every message it is sent and
//! asks it what to replay when the client comes back saying how many it has.

use std::collections::VecDeque;
use std::fmt;

use super::message::Message;

/// What a connection opened with `wscgi-resume=KEY` keeps for a resume.
#[derive(Debug)]
pub struct Session {
    /// The client's secret key; the hub finds the session by it.
    pub key: String,
    pub ring: ReplayRing<Message>,
    /// While a replay after a resume is under way: the number of the last message queued for
    /// the socket. Later ones (live ones included) wait in the ring, so they stay in order.
    pub behind: Option<u64>,
    /// A resume the backend accepted could not be replayed after all (4409), and the hub has
    /// not counted it yet (`wscgi_resumes_refused_total`).
    pub replay_refused: bool,
}

impl Session {
    pub fn new(key: String, limit: usize) -> Session {
        Session {
            key,
            ring: ReplayRing::new(limit),
            behind: None,
            replay_refused: false,
        }
    }
}

/// Which messages the ring may drop when it is over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// A live connection: the client has (most likely) had them all; the oldest go first.
    Recent,
    /// Nothing after the `n`-th message: the client has not had those (parked: everything
    /// sent since the drop; resuming: everything after the count the client gave).
    After(u64),
}

/// Messages the client has not had no longer fit in the ring: the session cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Why a count cannot be resumed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannotResume {
    /// The client claims more messages than were sent.
    Ahead { received: u64, sent: u64 },
    /// Messages after the client's count are no longer kept.
    Behind { received: u64, oldest_kept: u64 },
}

impl fmt::Display for CannotResume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ahead { received, sent } => {
                write!(f, "client has {received} messages, {sent} were sent")
            }
            Self::Behind {
                received,
                oldest_kept,
            } => write!(
                f,
                "client has {received} messages, the oldest kept is number {oldest_kept}"
            ),
        }
    }
}

/// The last messages of a session, numbered from 1 in the order they were sent.
#[derive(Debug)]
pub struct ReplayRing<M> {
    items: VecDeque<(M, usize)>,
    /// What the items weigh together (see [`ReplayRing::push`]).
    bytes: usize,
    /// Messages sent so far: the number of the newest one.
    sent: u64,
    limit: usize,
    hold: Hold,
}

impl<M> ReplayRing<M> {
    pub fn new(limit: usize) -> ReplayRing<M> {
        ReplayRing {
            items: VecDeque::new(),
            bytes: 0,
            sent: 0,
            limit,
            hold: Hold::Recent,
        }
    }

    /// Counts and keeps one message of `size` payload bytes. Each entry weighs its payload plus
    /// its own bookkeeping, so many tiny messages are bounded too. Older messages make room as
    /// [`Hold`] allows; `Err` when the ones it protects do not fit.
    pub fn push(&mut self, message: M, size: usize) -> Result<(), Overflow> {
        let weight = size.saturating_add(std::mem::size_of::<(M, usize)>());
        self.sent += 1;
        self.items.push_back((message, weight));
        self.bytes = self.bytes.saturating_add(weight);
        while self.bytes > self.limit && self.may_drop_oldest() {
            self.drop_oldest();
        }
        match self.bytes > self.limit {
            true => Err(Overflow),
            false => Ok(()),
        }
    }

    pub fn set_hold(&mut self, hold: Hold) {
        self.hold = hold;
    }

    pub fn hold(&self) -> Hold {
        self.hold
    }

    /// Whether the client, having had `received` messages, can be given all the rest.
    pub fn check(&self, received: u64) -> Result<(), CannotResume> {
        let oldest_kept = self.oldest_kept();
        if received > self.sent {
            Err(CannotResume::Ahead {
                received,
                sent: self.sent,
            })
        } else if received + 1 < oldest_kept {
            Err(CannotResume::Behind {
                received,
                oldest_kept,
            })
        } else {
            Ok(())
        }
    }

    /// The client has had `received` messages: those are dropped, the rest stays (to be
    /// replayed from [`ReplayRing::get`]) and is held until the client has it.
    pub fn resume_from(&mut self, received: u64) -> Result<(), CannotResume> {
        self.check(received)?;
        while self.oldest_kept() <= received {
            self.drop_oldest();
        }
        self.hold = Hold::After(received);
        Ok(())
    }

    /// Message number `n`, if it is kept.
    pub fn get(&self, n: u64) -> Option<&M> {
        let index = n.checked_sub(self.oldest_kept())?;
        self.items.get(usize::try_from(index).ok()?).map(|(m, _)| m)
    }

    /// Number of messages sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// What the kept messages weigh, bookkeeping included.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Frees every kept message (the session ended); the count stays.
    pub fn clear(&mut self) {
        self.items = VecDeque::new();
        self.bytes = 0;
    }

    /// The number of the oldest message kept (`sent + 1` when none is).
    fn oldest_kept(&self) -> u64 {
        self.sent + 1 - self.items.len() as u64
    }

    fn may_drop_oldest(&self) -> bool {
        match self.hold {
            _ if self.items.is_empty() => false,
            Hold::Recent => true,
            Hold::After(n) => self.oldest_kept() <= n,
        }
    }

    fn drop_oldest(&mut self) {
        if let Some((_, weight)) = self.items.pop_front() {
            self.bytes -= weight;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bookkeeping of one `u32` entry: each test message weighs its size plus this.
    const E: usize = std::mem::size_of::<(u32, usize)>();

    fn ring_of(limit: usize, count: u32, size: usize) -> ReplayRing<u32> {
        let mut ring = ReplayRing::new(limit);
        for m in 1..=count {
            ring.push(m, size).unwrap();
        }
        ring
    }

    /// Resumes from `received` and reads what is to be replayed, as a connection does.
    fn replay(ring: &mut ReplayRing<u32>, received: u64) -> Result<Vec<u32>, CannotResume> {
        ring.resume_from(received)?;
        let next = received + 1;
        Ok((next..=ring.sent())
            .map_while(|n| ring.get(n).copied())
            .collect())
    }

    #[test]
    fn replays_everything_after_the_count() {
        let mut ring = ring_of(1 << 20, 8, 10);
        assert_eq!(ring.sent(), 8);
        assert_eq!(ring.bytes(), 8 * (10 + E));
        assert_eq!(replay(&mut ring, 3), Ok(vec![4, 5, 6, 7, 8]));
        // What the client acknowledged is gone; the rest stays for the next drop.
        assert_eq!(ring.len(), 5);
        assert_eq!(
            (ring.get(3), ring.get(4), ring.get(8), ring.get(9)),
            (None, Some(&4), Some(&8), None)
        );
        assert_eq!(
            ring.hold(),
            Hold::After(3),
            "held until the client has them"
        );
        assert_eq!(replay(&mut ring, 8), Ok(vec![]));
        assert!(ring.is_empty());
        assert_eq!(ring.bytes(), 0);
    }

    #[test]
    fn a_count_ahead_or_behind_cannot_resume() {
        let mut ring = ring_of(3 * (10 + E), 8, 10);
        assert_eq!(ring.len(), 3, "a live ring keeps the newest that fit");
        assert_eq!(
            ring.check(9),
            Err(CannotResume::Ahead {
                received: 9,
                sent: 8
            })
        );
        assert_eq!(
            replay(&mut ring, 4),
            Err(CannotResume::Behind {
                received: 4,
                oldest_kept: 6
            })
        );
        assert_eq!(ring.len(), 3, "a refused resume changes nothing");
        assert_eq!(replay(&mut ring, 5), Ok(vec![6, 7, 8]));
        let mut empty: ReplayRing<u32> = ReplayRing::new(100);
        assert_eq!(replay(&mut empty, 0), Ok(vec![]));
        assert!(empty.check(1).is_err());
    }

    #[test]
    fn held_messages_overflow_instead_of_being_dropped() {
        let per = 10 + E;
        let mut ring = ring_of(4 * per, 3, 10);
        // Parked after 3: older messages may make room, newer ones may not.
        ring.set_hold(Hold::After(3));
        for m in 4..=7 {
            ring.push(m, 10).unwrap();
        }
        assert_eq!(replay(&mut ring, 3), Ok(vec![4, 5, 6, 7]));
        assert_eq!(ring.push(8, 10), Err(Overflow));
        // A message bigger than the whole ring: a live ring keeps nothing, a held one overflows.
        let mut live: ReplayRing<u32> = ReplayRing::new(per);
        live.push(1, 10).unwrap();
        live.push(2, 11).unwrap();
        assert_eq!((live.len(), live.bytes(), live.sent()), (0, 0, 2));
        live.set_hold(Hold::After(2));
        assert_eq!(live.push(3, 11), Err(Overflow));
    }

    #[test]
    fn weights_include_bookkeeping_so_tiny_messages_are_bounded() {
        let ring = ring_of(100 * E, 1000, 0);
        assert_eq!(ring.len(), 100);
        let mut ring = ring;
        ring.clear();
        assert_eq!((ring.len(), ring.bytes(), ring.sent()), (0, 0, 1000));
    }
}
