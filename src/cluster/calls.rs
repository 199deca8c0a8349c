//! Push-API calls waiting for other instances, each with its deadline (`--backend-timeout`).
//!
//! Pure bookkeeping: the reactor starts a call when it sends a message, feeds in what Redis
//! and the other instances answer, and gets the call back, [`Finished`], once it is decided.
//! `C` is whatever the caller needs to finish its answer (which connection waits, and so on).

use std::collections::HashMap;
use std::time::Instant;

use super::wire::Reply;

/// What a call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request to the instance holding a connection: its answer.
    Forward,
    /// A publish: Redis's count of the instances that received it.
    Publish,
    /// A question to every instance: one answer from each that received it.
    Gather,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The holder's answer to a forwarded request.
    Answered(Reply),
    /// No instance listens on the holder's inbox: nobody holds that connection.
    NotHeld,
    /// A publish reached this many other instances.
    Reached(u64),
    /// The answers of the other instances; `complete` is false when some did not answer in
    /// time.
    Gathered { answers: Vec<Reply>, complete: bool },
    /// Redis refused or lost the message.
    Failed(String),
    /// The deadline passed.
    TimedOut,
}

#[derive(Debug)]
pub struct Finished<C> {
    pub context: C,
    pub outcome: Outcome,
}

#[derive(Debug)]
struct Call<C> {
    kind: Kind,
    context: C,
    deadline: Instant,
    /// Other instances that received a gather question (known once Redis answered).
    expected: Option<u64>,
    answers: Vec<Reply>,
}

#[derive(Debug)]
pub struct Calls<C> {
    next: u64,
    open: HashMap<u64, Call<C>>,
}

impl<C> Default for Calls<C> {
    fn default() -> Self {
        Calls {
            next: 0,
            open: HashMap::new(),
        }
    }
}

impl<C> Calls<C> {
    /// A new call; its number goes into the message that starts it.
    pub fn start(&mut self, kind: Kind, context: C, deadline: Instant) -> u64 {
        self.next += 1;
        let call = Call {
            kind,
            context,
            deadline,
            expected: None,
            answers: Vec::new(),
        };
        self.open.insert(self.next, call);
        self.next
    }

    /// Forgets a call whose message could not be sent.
    pub fn cancel(&mut self, call: u64) -> Option<C> {
        self.open.remove(&call).map(|c| c.context)
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Redis answered the `PUBLISH` that started `call`: `receivers` subscribers got it,
    /// this instance's own subscriber among them for publishes and questions to all.
    pub fn on_published(
        &mut self,
        call: u64,
        receivers: Result<u64, String>,
    ) -> Option<Finished<C>> {
        let kind = self.open.get(&call)?.kind;
        let outcome = match (kind, receivers) {
            (_, Err(why)) => Outcome::Failed(why),
            (Kind::Forward, Ok(0)) => Outcome::NotHeld,
            (Kind::Forward, Ok(_)) => return None,
            (Kind::Publish, Ok(n)) => Outcome::Reached(n.saturating_sub(1)),
            (Kind::Gather, Ok(n)) => {
                let open = self.open.get_mut(&call)?;
                open.expected = Some(n.saturating_sub(1));
                return self.gathered_if_complete(call);
            }
        };
        self.finish(call, outcome)
    }

    /// Another instance answered `call`.
    pub fn on_reply(&mut self, call: u64, reply: Reply) -> Option<Finished<C>> {
        let open = self.open.get_mut(&call)?;
        match open.kind {
            Kind::Forward => self.finish(call, Outcome::Answered(reply)),
            Kind::Gather => {
                open.answers.push(reply);
                self.gathered_if_complete(call)
            }
            Kind::Publish => None,
        }
    }

    /// Calls whose deadline passed: a gather keeps what it got, anything else timed out.
    pub fn expire(&mut self, now: Instant) -> Vec<Finished<C>> {
        let late: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(&n, _)| n)
            .collect();
        let mut finished = Vec::with_capacity(late.len());
        for n in late {
            let Some(call) = self.open.remove(&n) else {
                continue;
            };
            let outcome = match (call.kind, call.expected) {
                (Kind::Gather, Some(_)) => Outcome::Gathered {
                    answers: call.answers,
                    complete: false,
                },
                _ => Outcome::TimedOut,
            };
            finished.push(Finished {
                context: call.context,
                outcome,
            });
        }
        finished
    }

    /// Every open call fails at once (Redis is gone: no answer can come).
    pub fn fail_all(&mut self, why: &str) -> Vec<Finished<C>> {
        self.open
            .drain()
            .map(|(_, call)| Finished {
                context: call.context,
                outcome: Outcome::Failed(why.to_string()),
            })
            .collect()
    }

    fn gathered_if_complete(&mut self, call: u64) -> Option<Finished<C>> {
        let open = self.open.get(&call)?;
        let expected = open.expected?;
        if (open.answers.len() as u64) < expected {
            return None;
        }
        let call = self.open.remove(&call)?;
        Some(Finished {
            context: call.context,
            outcome: Outcome::Gathered {
                answers: call.answers,
                complete: true,
            },
        })
    }

    fn finish(&mut self, call: u64, outcome: Outcome) -> Option<Finished<C>> {
        let call = self.open.remove(&call)?;
        Some(Finished {
            context: call.context,
            outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ids(id: &str) -> Reply {
        Reply::Ids(vec![id.into()])
    }

    #[test]
    fn forward_waits_for_the_holder() {
        let mut calls = Calls::default();
        let later = Instant::now() + Duration::from_secs(5);
        let a = calls.start(Kind::Forward, "a", later);
        let b = calls.start(Kind::Forward, "b", later);
        assert!(
            calls.on_published(a, Ok(1)).is_none(),
            "one instance got it"
        );
        let done = calls.on_reply(a, ids("x")).unwrap();
        assert_eq!(
            (done.context, done.outcome),
            ("a", Outcome::Answered(ids("x")))
        );
        let done = calls.on_published(b, Ok(0)).unwrap();
        assert_eq!(done.outcome, Outcome::NotHeld);
        assert!(
            calls.on_reply(a, ids("late")).is_none(),
            "finished calls are gone"
        );
        assert!(calls.is_empty());
    }

    #[test]
    fn publish_counts_other_instances() {
        let mut calls = Calls::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        let p = calls.start(Kind::Publish, (), deadline);
        assert_eq!(
            calls.on_published(p, Ok(3)).unwrap().outcome,
            Outcome::Reached(2)
        );
        let p = calls.start(Kind::Publish, (), deadline);
        let failed = calls.on_published(p, Err("down".into())).unwrap();
        assert_eq!(failed.outcome, Outcome::Failed("down".into()));
    }

    #[test]
    fn gather_ends_with_the_last_answer_or_the_deadline() {
        let mut calls = Calls::default();
        let now = Instant::now();
        let g = calls.start(Kind::Gather, 1, now + Duration::from_secs(5));
        assert!(
            calls.on_reply(g, ids("early")).is_none(),
            "count not known yet"
        );
        assert!(
            calls.on_published(g, Ok(3)).is_none(),
            "one of two answered"
        );
        let done = calls.on_reply(g, ids("b")).unwrap();
        let want = Outcome::Gathered {
            answers: vec![ids("early"), ids("b")],
            complete: true,
        };
        assert_eq!(done.outcome, want);

        let alone = calls.start(Kind::Gather, 2, now + Duration::from_secs(5));
        let done = calls.on_published(alone, Ok(1)).unwrap();
        let none = Outcome::Gathered {
            answers: vec![],
            complete: true,
        };
        assert_eq!(done.outcome, none, "no other instance");

        let slow = calls.start(Kind::Gather, 3, now + Duration::from_millis(10));
        let lost = calls.start(Kind::Forward, 4, now + Duration::from_millis(10));
        calls.on_published(slow, Ok(3));
        calls.on_reply(slow, ids("a"));
        let mut late = calls.expire(now + Duration::from_secs(1));
        late.sort_by_key(|f| f.context);
        let outcomes: Vec<Outcome> = late.into_iter().map(|f| f.outcome).collect();
        let partial = Outcome::Gathered {
            answers: vec![ids("a")],
            complete: false,
        };
        assert_eq!(outcomes, vec![partial, Outcome::TimedOut]);
        let _ = lost;
        assert!(calls.is_empty());
    }

    #[test]
    fn an_outage_fails_everything_open() {
        let mut calls = Calls::default();
        let later = Instant::now() + Duration::from_secs(5);
        calls.start(Kind::Forward, (), later);
        calls.start(Kind::Gather, (), later);
        let failed = calls.fail_all("redis unavailable");
        assert_eq!(failed.len(), 2);
        assert!(
            failed
                .iter()
                .all(|f| f.outcome == Outcome::Failed("redis unavailable".into()))
        );
        assert!(calls.is_empty());
    }
}
