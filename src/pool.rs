//! Worker threads that deliver events to the backend, and do the permessage-deflate work
//! that large messages would cost the reactor (see `ws::offload`).
//!
//! The reactor submits [`Job`]s; each worker takes one, delivers it (blocking, with retries),
//! sends the [`Done`] result back over a channel and wakes the reactor. The queue never holds
//! more than one job per connection (events of a connection are sent one at a time) and one
//! per push-API connection (a push waiting for its compression reads nothing more), so it is
//! bounded by `--max-connections` plus 1,024. Shutdown travels through the queue as a message.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use log::error;

use crate::backend::Delivery;
use crate::bell::Bell;
use crate::conn_id::ConnKey;
use crate::events::BackendError;
use crate::events::{Completion, Done, Event, EventName, Inflated, Job, Offload, Work};
use crate::reply::Reply;
use crate::static_files;
use crate::ws::offload;

enum Task {
    Run(Job),
    Stop,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    tasks: VecDeque<Task>,
    /// Workers waiting for a task. When all are busy, a push wakes nobody: that skips a
    /// futex syscall per event under load, when it matters most.
    idle: usize,
}

impl Queue {
    fn push(&self, task: Task) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tasks.push_back(task);
        let wake = state.idle > 0;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    fn pop(&self) -> Task {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(task) = state.tasks.pop_front() {
                return task;
            }
            state.idle += 1;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.idle -= 1;
        }
    }

    fn len(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tasks.len()
    }
}

pub struct Pool {
    queue: Arc<Queue>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn start(
        size: usize,
        delivery: Arc<Delivery>,
        done: Sender<Completion>,
        bell: Arc<Bell>,
    ) -> std::io::Result<Pool> {
        let queue = Arc::new(Queue::default());
        let mut workers = Vec::with_capacity(size);
        for n in 0..size {
            let (queue, delivery, done, bell) =
                (queue.clone(), delivery.clone(), done.clone(), bell.clone());
            let handle = thread::Builder::new()
                .name(format!("wscgi-worker-{n}"))
                .spawn(move || work(&queue, &delivery, &done, &bell))?;
            workers.push(handle);
        }
        Ok(Pool { queue, workers })
    }

    pub fn submit(&self, job: Job) {
        self.queue.push(Task::Run(job));
    }

    /// Jobs waiting for a free worker.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

impl Drop for Pool {
    /// Workers finish the jobs already queued, then stop.
    fn drop(&mut self) {
        for _ in &self.workers {
            self.queue.push(Task::Stop);
        }
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

fn work(queue: &Queue, delivery: &Delivery, done: &Sender<Completion>, bell: &Bell) {
    while let Task::Run(job) = queue.pop() {
        let completion = match job.work {
            Work::Deliver(event, work) => {
                Completion::Done(Box::new(deliver(delivery, job.key, event, work)))
            }
            Work::Compress {
                ticket,
                messages,
                level,
            } => Completion::Compressed {
                ticket,
                deflated: offload::deflate_all(&messages, level),
            },
            Work::Static { key, request } => {
                let response =
                    panic::catch_unwind(AssertUnwindSafe(|| delivery.serve_static(&request)));
                Completion::Static {
                    key,
                    response: response.unwrap_or_else(|_| static_files::internal_error()),
                }
            }
        };
        if done.send(completion).is_err() {
            return; // The reactor is gone.
        }
        if let Err(e) = bell.ring() {
            error!("cannot wake the reactor: {e}");
        }
    }
}

/// Delivers the event, with what the reactor left to the worker (see `ws::offload`).
fn deliver(delivery: &Delivery, key: Option<ConnKey>, event: Event, work: Offload) -> Done {
    let started = Instant::now();
    let (event, inflated) = match work.inflate {
        None => (event, None),
        Some(limit) => match offload::inflate_event(event, limit) {
            Ok((event, len)) => (event, Some(Inflated::Bytes(len))),
            Err((code, reason)) => {
                return Done {
                    key,
                    event: EventName::Message,
                    result: Ok(Reply::default()),
                    retries: 0,
                    elapsed: started.elapsed(),
                    inflated: Some(Inflated::Refused { code, reason }),
                };
            }
        },
    };
    // A panic in a backend must cost one event, not the worker (and with it the service).
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| delivery.deliver(&event)));
    let (mut result, retries) = outcome.unwrap_or_else(|_| {
        error!(
            "worker panicked while delivering a {} event",
            event.kind.name().as_str()
        );
        (Err(BackendError::Panicked), 0)
    });
    if let (Ok(reply), Some(deflating)) = (&mut result, work.deflate) {
        offload::deflate_reply(reply, deflating);
    }
    Done {
        key,
        event: event.kind.name(),
        result,
        retries,
        elapsed: started.elapsed(),
        inflated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ConnInfo, EventKind};
    use std::sync::mpsc;
    use std::time::Duration;
    use tungstenite::Bytes;

    fn message(body: &'static [u8]) -> Job {
        let conn = ConnInfo {
            id: "id".into(),
            target: "/".into(),
            remote_text: String::new(),
            remote: "127.0.0.1:1".parse().unwrap(),
            route: 0,
            headers: Vec::new(),
            connected_at: std::time::SystemTime::now(),
        };
        let event = Event {
            kind: EventKind::Message {
                data: Bytes::from_static(body),
                binary: false,
            },
            conn: Some(Arc::new(conn)),
            seq: 1,
            meta: Vec::new(),
            boot_id: Arc::from("boot"),
        };
        Job {
            key: None,
            work: Work::Deliver(event, Offload::default()),
        }
    }

    fn result(rx: &mpsc::Receiver<Completion>) -> Result<(), BackendError> {
        match rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a completion")
        {
            Completion::Done(done) => done.result.map(|_| ()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_panicking_backend_fails_one_event_and_the_worker_goes_on() {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let (tx, rx) = mpsc::channel();
        // One worker: if the panic had killed it, the second job would never complete.
        let bell = Arc::new(Bell::new(waker));
        let pool = Pool::start(1, Arc::new(Delivery::panicking()), tx, bell).unwrap();
        pool.submit(message(b"panic"));
        assert_eq!(result(&rx), Err(BackendError::Panicked));
        pool.submit(message(b"fine"));
        assert_eq!(result(&rx), Ok(()));
    }
}
