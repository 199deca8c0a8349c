//! The reactor's doorbell: how workers (and the signal thread) tell it that results wait in
//! its channel.
//!
//! Ringing is a syscall on the reactor's mio `Waker` and an epoll wake-up. Under load many
//! results arrive while the reactor is busy; the bell rings only if nobody rang since the
//! reactor last answered, so one wake-up collects them all.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use mio::Waker;

pub struct Bell {
    waker: Waker,
    rung: AtomicBool,
}

impl Bell {
    pub fn new(waker: Waker) -> Bell {
        Bell {
            waker,
            rung: AtomicBool::new(false),
        }
    }

    /// Call after sending a result. The swap orders that send before the reactor's next
    /// `answer`, so a result is never left behind unannounced.
    pub fn ring(&self) -> io::Result<()> {
        if self.rung.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let woken = self.waker.wake();
        if woken.is_err() {
            // Nobody heard it: let the next result ring again rather than never.
            self.rung.store(false, Ordering::Release);
        }
        woken
    }

    /// The reactor heard the bell: call before draining the channel, so a result sent after
    /// the drain rings again.
    pub fn answer(&self) {
        self.rung.swap(false, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    fn wakes(poll: &mut Poll) -> usize {
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        events.iter().count()
    }

    #[test]
    fn rings_once_until_answered() {
        let mut poll = Poll::new().unwrap();
        let bell = Bell::new(Waker::new(poll.registry(), Token(0)).unwrap());
        bell.ring().unwrap();
        bell.ring().unwrap();
        assert_eq!(wakes(&mut poll), 1);
        assert_eq!(
            wakes(&mut poll),
            0,
            "the second ring was merged into the first"
        );
        bell.answer();
        bell.ring().unwrap();
        assert_eq!(wakes(&mut poll), 1, "answered: the next ring wakes again");
    }
}
