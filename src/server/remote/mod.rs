//! The push API and the hub in a cluster (`--redis`): every call behaves as if all clients were
//! here. A call for a connection another instance holds goes to that instance alone; publishes
//! go to this instance's clients at once and to the others through Redis; presence asks every
//! instance. Such calls answer later: the push-API connection waits (see `api::conn`), the
//! reactor does not. What other instances send is carried out here, on the hub.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::commands::with_status;
use super::fanout::Fanout;
use super::hub::Hub;
use crate::api::batch::Op;
use crate::api::conn::Answer;
use crate::api::json::Object;
use crate::api::response::Response;
use crate::api::routes::{ApiError, Command};
use crate::bell::Bell;
use crate::burst_log::BurstLog;
use crate::cluster;
use crate::cluster::calls::{Finished, Kind};
use crate::cluster::node::{self, Node};
use crate::cluster::wire::{Audience, Message, Publish, Request};
use crate::config::Redis;
use crate::ws::message::Message as WsMessage;
use replies::{What, request_of, respond, target};

/// Who waits for a call: a push-API connection, or a batch one of whose operations it is.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Api { index: usize, ticket: u64 },
    Batch(u64),
}

/// A call in flight: who waits, and this instance's part of the answer.
#[derive(Debug)]
pub(super) struct Waiter {
    owner: Owner,
    what: What,
}

/// A `/batch` whose operations run in order, some of them on other instances.
struct BatchRun {
    owner: Owner,
    rest: VecDeque<Result<Op, String>>,
    results: Vec<String>,
    deadline: Instant,
}

/// The answer a waiting push-API connection gets.
pub(super) struct Ready {
    pub index: usize,
    pub ticket: u64,
    pub response: Response,
}

enum Step {
    Now(Response),
    Later,
}

pub(super) struct Remote {
    node: Node<Waiter>,
    batches: HashMap<u64, BatchRun>,
    next_ticket: u64,
    refused: BurstLog,
    /// Larger cluster messages are refused: a message's payload, in base64, and its fields.
    max_payload: usize,
}

/// One message to this instance's clients in `audience`.
fn deliver_here(
    hub: &mut Hub,
    audience: &Audience,
    message: WsMessage,
    exclude: &[String],
) -> Fanout {
    match audience {
        Audience::Channels(names) => hub.publish_here(names, message, exclude),
        Audience::Path(prefix) => hub.broadcast_here(Some(prefix), message, exclude),
    }
}

/// Joins the cluster when `--redis` is given: connection ids then start with this instance's
/// node tag.
pub(super) fn join(
    config: &crate::config::Config,
    bell: &Arc<Bell>,
    limits: &mut crate::ws::conn::Limits,
) -> Result<Option<Remote>, crate::Error> {
    let Some(redis) = &config.redis else {
        return Ok(None);
    };
    let setup = |e: String| crate::Error::Setup(std::io::Error::other(format!("--redis: {e}")));
    let tag = cluster::new_tag().map_err(|e| setup(e.to_string()))?;
    limits.id_prefix = tag.clone();
    let remote = Remote::start(
        redis,
        tag,
        config.backend_timeout,
        bell.clone(),
        config.max_message,
    );
    remote.map(Some).map_err(setup)
}

impl Remote {
    pub fn start(
        redis: &Redis,
        tag: String,
        timeout: Duration,
        bell: Arc<Bell>,
        max_message: usize,
    ) -> Result<Remote, String> {
        Ok(Remote {
            node: Node::start(redis, tag, timeout, bell)?,
            batches: HashMap::new(),
            next_ticket: 0,
            refused: BurstLog::new("cluster message refused"),
            max_payload: max_message / 3 * 4 + 64 * 1024,
        })
    }

    /// A push-API call from connection `index`.
    pub fn execute(
        &mut self,
        hub: &mut Hub,
        command: Command,
        index: usize,
    ) -> Result<Answer, ApiError> {
        let ticket = self.ticket();
        match self.run(hub, command, Owner::Api { index, ticket })? {
            Step::Now(response) => Ok(Answer::Now(response)),
            Step::Later => Ok(Answer::Later(ticket)),
        }
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    fn run(&mut self, hub: &mut Hub, command: Command, owner: Owner) -> Result<Step, ApiError> {
        if let Some(tag) = target(&command).and_then(cluster::node_of)
            && tag != self.node.tag
        {
            let tag = tag.to_string();
            return self.forward(&tag, command, owner);
        }
        match command {
            Command::Publish {
                channel,
                data,
                binary,
                exclude,
            } => {
                let head = Object::new().str("channel", &channel);
                let audience = Audience::Channels(vec![channel]);
                self.spread(
                    hub,
                    audience,
                    head,
                    WsMessage::new(binary, data),
                    exclude,
                    owner,
                )
            }
            Command::Broadcast {
                prefix,
                data,
                binary,
                exclude,
            } => {
                let path = prefix.unwrap_or_else(|| "/".into());
                let head = Object::new().str("path", &path);
                let audience = Audience::Path(path);
                self.spread(
                    hub,
                    audience,
                    head,
                    WsMessage::new(binary, data),
                    exclude,
                    owner,
                )
            }
            Command::ChannelInfo { name } => {
                let ids = hub.member_ids(&name).unwrap_or_default();
                let request = Request::Members {
                    channel: name.clone(),
                };
                self.gather(
                    Waiter {
                        owner,
                        what: What::Members { name, ids },
                    },
                    request,
                )
            }
            Command::ListChannels => {
                let what = What::Channels(hub.channel_counts());
                self.gather(Waiter { owner, what }, Request::Channels)
            }
            Command::ListConnections { channel } => {
                let what = What::Connections(hub.connection_ids(channel.as_deref()));
                self.gather(Waiter { owner, what }, Request::Connections { channel })
            }
            Command::Batch(ops) => Ok(self.batch(hub, ops, owner)),
            Command::Metrics => {
                let mut response = hub.execute(Command::Metrics)?;
                response.body.push_str(&self.node.metrics());
                Ok(Step::Now(response))
            }
            other => hub.execute(other).map(Step::Now),
        }
    }

    /// A publish or broadcast: this instance's clients at once, the others through Redis; the
    /// answer waits for Redis's count of the instances that received it.
    fn spread(
        &mut self,
        hub: &mut Hub,
        audience: Audience,
        head: Object,
        message: WsMessage,
        exclude: Vec<String>,
        owner: Owner,
    ) -> Result<Step, ApiError> {
        self.check_up()?;
        let fanout = deliver_here(hub, &audience, message.clone(), &exclude);
        let publish = Publish {
            audience,
            data: message.payload,
            binary: message.binary,
            exclude,
            from: Some(self.node.tag.clone()),
        };
        let what = What::Publish { fanout, head };
        self.publish(Waiter { owner, what }, publish)
    }

    fn check_up(&self) -> Result<(), ApiError> {
        match self.node.is_up() {
            true => Ok(()),
            false => Err(ApiError::Unavailable(self.node.unavailable())),
        }
    }

    /// To the inbox of the instance holding the connection: one message, one answer.
    fn forward(&mut self, tag: &str, command: Command, owner: Owner) -> Result<Step, ApiError> {
        self.check_up()?;
        let (id, request) = request_of(command)?;
        let channel = self.node.inbox_of(tag);
        self.call(
            Kind::Forward,
            Waiter {
                owner,
                what: What::Forward { id },
            },
            channel,
            request,
        )
    }

    fn gather(&mut self, waiter: Waiter, request: Request) -> Result<Step, ApiError> {
        self.check_up()?;
        let channel = self.node.names.all.clone();
        self.call(Kind::Gather, waiter, channel, request)
    }

    fn call(
        &mut self,
        kind: Kind,
        waiter: Waiter,
        channel: String,
        request: Request,
    ) -> Result<Step, ApiError> {
        let deadline = self.deadline_for(waiter.owner);
        let call = self.node.calls.start(kind, waiter, deadline);
        let from = self.node.tag.clone();
        let message = Message::Request {
            call,
            from,
            deadline: Some(node::wall_clock_ms(deadline)),
            request,
        };
        self.send_call(call, channel, &message)
    }

    /// When a call must be answered: `--backend-timeout` from now, and for an operation of a
    /// `/batch` no later than the batch itself, so that a batch never waits past its own
    /// timeout (each of its remote calls would otherwise start a full timeout afresh).
    fn deadline_for(&self, owner: Owner) -> Instant {
        let call = self.node.deadline();
        match owner {
            Owner::Batch(id) => self.batches.get(&id).map_or(call, |b| call.min(b.deadline)),
            Owner::Api { .. } => call,
        }
    }

    fn publish(&mut self, waiter: Waiter, publish: Publish) -> Result<Step, ApiError> {
        let deadline = self.deadline_for(waiter.owner);
        let call = self.node.calls.start(Kind::Publish, waiter, deadline);
        let channel = self.node.names.publish.clone();
        self.send_call(call, channel, &Message::Publish(publish))
    }

    fn send_call(
        &mut self,
        call: u64,
        channel: String,
        message: &Message,
    ) -> Result<Step, ApiError> {
        match self.node.send(channel, message, Some(call)) {
            Ok(()) => Ok(Step::Later),
            Err(why) => {
                self.node.calls.cancel(call);
                Err(ApiError::Unavailable(why))
            }
        }
    }

    /// Hands a finished call's answer to whoever waits for it.
    fn finish(&mut self, hub: &mut Hub, finished: Finished<Waiter>, ready: &mut Vec<Ready>) {
        let response = respond(finished.context.what, finished.outcome);
        let mut owner = finished.context.owner;
        let mut response = response;
        loop {
            match owner {
                Owner::Api { index, ticket } => {
                    return ready.push(Ready {
                        index,
                        ticket,
                        response,
                    });
                }
                Owner::Batch(id) => {
                    let Some(run) = self.batches.get_mut(&id) else {
                        return;
                    };
                    run.results.push(with_status(&response));
                    match self.continue_batch(hub, id) {
                        Some((o, r)) => (owner, response) = (o, r),
                        None => return,
                    }
                }
            }
        }
    }

    /// Calls past their deadline.
    pub fn tick(&mut self, hub: &mut Hub, now: Instant) -> Vec<Ready> {
        self.refused.tick(now);
        let mut ready = Vec::new();
        for f in self.node.calls.expire(now) {
            self.node.counters.failed += 1;
            self.finish(hub, f, &mut ready);
        }
        ready
    }

    /// Removes this instance's liveness key; the process exits next.
    pub fn leave(&mut self) {
        self.node.leave();
    }
}

mod batch;
mod incoming;
mod replies;
