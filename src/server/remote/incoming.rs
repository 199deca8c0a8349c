//! What other instances and backends send through Redis, carried out on this instance.

use std::time::Instant;

use log::debug;

use super::{Ready, Remote, deliver_here};
use crate::api::response::Response;
use crate::api::routes::Command;
use crate::cluster::link::In;
use crate::cluster::node;
use crate::cluster::wire::{self, Message, Reply, Request};
use crate::server::commands::command_of;
use crate::server::hub::Hub;
use crate::ws::message::Message as WsMessage;

impl Remote {
    /// Everything the Redis link reported; answers for waiting push-API connections.
    pub fn on_link(&mut self, hub: &mut Hub) -> Vec<Ready> {
        let mut ready = Vec::new();
        for incoming in self.node.drain() {
            match incoming {
                In::Message { channel, payload } => {
                    self.on_message(hub, &channel, &payload, &mut ready)
                }
                In::Published { call, result } => {
                    if result.is_err() {
                        self.node.counters.failed += 1;
                    }
                    if let Some(f) = self.node.calls.on_published(call, result) {
                        self.finish(hub, f, &mut ready);
                    }
                }
                In::Lost => self.node.counters.failed += 1,
                In::Up(side) => {
                    self.node.on_health(side, None);
                }
                In::Down(side, why) => {
                    if self.node.on_health(side, Some(why.clone())) {
                        for f in self.node.calls.fail_all(&why) {
                            self.finish(hub, f, &mut ready);
                        }
                    }
                }
            }
        }
        self.flush_outbox(hub);
        ready
    }

    fn on_message(&mut self, hub: &mut Hub, channel: &str, payload: &[u8], ready: &mut Vec<Ready>) {
        self.node.counters.received += 1;
        let decoded = match payload.len() > self.max_payload {
            true => Err(format!(
                "{} bytes, more than {}",
                payload.len(),
                self.max_payload
            )),
            false => wire::decode(payload).map_err(|e| e.to_string()),
        };
        let message = match decoded {
            Ok(message) => message,
            Err(why) => {
                self.node.counters.failed += 1;
                return self
                    .refused
                    .record(Instant::now(), format!("on {channel}: {why}"));
            }
        };
        match message {
            Message::Publish(p) if p.from.as_deref() != Some(self.node.tag.as_str()) => {
                let message = WsMessage::new(p.binary, p.data);
                deliver_here(hub, &p.audience, message, &p.exclude);
            }
            Message::Publish(_) => {}
            // The asker answered its caller 503 already: doing it now would surprise everyone.
            Message::Request {
                from,
                deadline: Some(deadline),
                ..
            } if from != self.node.tag && node::past(deadline) => {
                debug!("a request from {from} came after its deadline; dropped");
            }
            Message::Request {
                call,
                from,
                request,
                ..
            } if from != self.node.tag => {
                let reply = answer(hub, request);
                let me = self.node.tag.clone();
                let message = Message::Reply {
                    call,
                    from: me,
                    reply,
                };
                let _ = self.node.send(self.node.inbox_of(&from), &message, None);
            }
            Message::Request { .. } => {}
            Message::Reply { call, reply, .. } => {
                if let Some(f) = self.node.calls.on_reply(call, reply) {
                    self.finish(hub, f, ready);
                }
            }
        }
    }

    /// `WS-Publish` of backend replies, to the other instances.
    pub fn flush_outbox(&mut self, hub: &mut Hub) {
        let Some(outbox) = hub.outbox.as_mut() else {
            return;
        };
        for mut publish in outbox.drain(..) {
            if !self.node.is_up() {
                self.node.counters.failed += 1;
                continue;
            }
            publish.from = Some(self.node.tag.clone());
            let channel = self.node.names.publish.clone();
            let _ = self.node.send(channel, &Message::Publish(publish), None);
        }
    }
}

/// What this instance answers another one.
fn answer(hub: &mut Hub, request: Request) -> Reply {
    let command = match request {
        Request::Op(op) => command_of(op),
        Request::Info { id } => Command::Info { id },
        Request::Members { channel } => {
            return Reply::Ids(hub.member_ids(&channel).unwrap_or_default());
        }
        Request::Channels => return Reply::Channels(hub.channel_counts()),
        Request::Connections { channel } => {
            return Reply::Ids(hub.connection_ids(channel.as_deref()));
        }
    };
    let response = hub.execute(command).unwrap_or_else(|e| Response::error(&e));
    Reply::Response {
        status: response.status,
        body: response.body,
    }
}
