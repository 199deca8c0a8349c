//! Carrying out push-API commands against the connections and channels.

use super::fanout::Fanout;
use super::hub::Hub;
use super::presence::{channels_response, connections_response, json_array, members_response};
use crate::api::batch::Op;
use crate::api::json::Object;
use crate::api::response::Response;
use crate::api::routes::{ApiError, Command};
use crate::conn_id::ConnKey;
use crate::metrics::Gauges;
use crate::ws::conn::{Accepted, Conn, SendError, Written};
use crate::ws::message::{Deflated, Frames, Message};

impl Hub {
    pub fn execute(&mut self, command: Command) -> Result<Response, ApiError> {
        self.execute_prepared(command, Vec::new())
    }

    /// Carries out a command whose messages' compressed frames were made already (one entry
    /// per message of the command, see `offload.rs`).
    pub(super) fn execute_prepared(
        &mut self,
        command: Command,
        prepared: Vec<Option<Deflated>>,
    ) -> Result<Response, ApiError> {
        let mut prepared = prepared.into_iter();
        let mut frames =
            |binary, data| Frames::prepared(Message::new(binary, data), prepared.next().flatten());
        match command {
            Command::Health => Ok(self.health()),
            Command::Metrics => Ok(Response::metrics(self.metrics.render(&self.gauges()))),
            Command::Send { id, data, binary } => self.send(&id, frames(binary, data)),
            Command::Close { id, code, reason } => {
                let conn = self.open_conn(&id)?;
                let key = conn.key;
                conn.close(code, &reason);
                conn.flush();
                self.after(key);
                let body = Object::new()
                    .bool("ok", true)
                    .str("id", &id)
                    .num("code", code);
                Ok(Response::json(200, body.finish()))
            }
            Command::Info { id } => {
                let key = self.open_conn(&id)?.key;
                Ok(Response::json(200, self.describe(key)))
            }
            Command::ListConnections { channel } => Ok(connections_response(
                self.connection_ids(channel.as_deref()),
            )),
            Command::ListChannels => Ok(channels_response(self.channel_counts())),
            Command::ChannelInfo { name } => {
                members_response(&name, self.member_ids(&name).unwrap_or_default())
            }
            Command::Publish {
                channel,
                data,
                binary,
                exclude,
            } => {
                let fanout = self.publish_frames(
                    std::slice::from_ref(&channel),
                    frames(binary, data),
                    &exclude,
                );
                Ok(fanout_response(
                    fanout,
                    Object::new().str("channel", &channel),
                    None,
                ))
            }
            Command::Broadcast {
                prefix,
                data,
                binary,
                exclude,
            } => {
                let fanout =
                    self.broadcast_frames(prefix.as_deref(), frames(binary, data), &exclude);
                let path = prefix.as_deref().unwrap_or("/");
                Ok(fanout_response(
                    fanout,
                    Object::new().str("path", path),
                    None,
                ))
            }
            Command::Subscribe { channel, id } => {
                let key = self.open_conn(&id)?.key;
                self.channels
                    .subscribe(&channel, key)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                Ok(membership(&channel, &id, true))
            }
            Command::Batch(ops) => Ok(self.batch(ops, prepared.collect())),
            Command::Unsubscribe { channel, id } => {
                let key = self.open_conn(&id)?.key;
                if !self.channels.unsubscribe(&channel, key) {
                    return Err(ApiError::NotFound(format!(
                        "connection {id} is not in channel {channel}"
                    )));
                }
                Ok(membership(&channel, &id, false))
            }
        }
    }

    /// Each operation as its own command, in order; one result per operation.
    fn batch(&mut self, ops: Vec<Result<Op, String>>, prepared: Vec<Option<Deflated>>) -> Response {
        let mut results = Vec::with_capacity(ops.len());
        let mut prepared = prepared.into_iter();
        for op in ops {
            let frame = prepared.next().flatten();
            let response = match op {
                Ok(op) => self
                    .execute_prepared(command_of(op), Vec::from([frame]))
                    .unwrap_or_else(|e| Response::error(&e)),
                Err(why) => Response::error(&ApiError::BadRequest(why)),
            };
            results.push(with_status(&response));
        }
        batch_response(&results)
    }

    /// The connection with this public id, if it takes messages: open, or a session waiting
    /// for its client (parked or resuming), which keeps them.
    pub(super) fn open_conn(&mut self, id: &str) -> Result<&mut Conn, ApiError> {
        let key = *self
            .ids
            .get(id)
            .ok_or_else(|| ApiError::NotFound(format!("connection {id}")))?;
        match self.get(key) {
            Some(conn) if conn.takes_messages() => Ok(conn),
            _ => Err(ApiError::NotFound(format!("connection {id} (closed)"))),
        }
    }

    fn send(&mut self, id: &str, mut frames: Frames) -> Result<Response, ApiError> {
        let conn = self.open_conn(id)?;
        let key = conn.key;
        let bytes = frames.message().payload.len();
        let sent = conn.send_message(&mut frames, Written::Nothing);
        conn.flush();
        self.after(key);
        match sent {
            Ok(Accepted::Sent) => {
                let body = Object::new()
                    .bool("ok", true)
                    .str("id", id)
                    .num("bytes", bytes as u64);
                Ok(Response::json(200, body.finish()))
            }
            // A session waiting for its client keeps it for the resume.
            Ok(Accepted::Kept) => {
                let body = Object::new()
                    .bool("ok", true)
                    .str("id", id)
                    .num("bytes", bytes as u64)
                    .bool("queued", true);
                Ok(Response::json(202, body.finish()))
            }
            Err(SendError::SlowConsumer) => Err(ApiError::SlowConsumer),
            Err(SendError::NotOpen) => Err(ApiError::NotFound(format!("connection {id} (closed)"))),
        }
    }

    /// One message to this instance's members of `channels`, except the `exclude` ids.
    #[cfg(feature = "redis")]
    pub(super) fn publish_here(
        &mut self,
        channels: &[String],
        message: Message,
        exclude: &[String],
    ) -> Fanout {
        self.publish_frames(channels, Frames::new(message), exclude)
    }

    fn publish_frames(
        &mut self,
        channels: &[String],
        mut frames: Frames,
        exclude: &[String],
    ) -> Fanout {
        self.fan_out(|r| {
            let exclude = r.exclusions(exclude, None);
            r.publish(channels, &mut frames, &exclude)
        })
    }

    /// One message to this instance's clients whose path starts with `prefix`.
    #[cfg(feature = "redis")]
    pub(super) fn broadcast_here(
        &mut self,
        prefix: Option<&str>,
        message: Message,
        exclude: &[String],
    ) -> Fanout {
        self.broadcast_frames(prefix, Frames::new(message), exclude)
    }

    fn broadcast_frames(
        &mut self,
        prefix: Option<&str>,
        mut frames: Frames,
        exclude: &[String],
    ) -> Fanout {
        self.fan_out(|r| {
            let exclude = r.exclusions(exclude, None);
            r.broadcast(prefix, &mut frames, &exclude)
        })
    }

    /// Values for `/metrics` that are read, not counted.
    pub(super) fn gauges(&self) -> Gauges {
        let mut g = Gauges {
            all_connections: self.clients.len(),
            queued_jobs: self.pool.queued(),
            saturation_paused: self.paused.len(),
            channels: self.channels.list().len(),
            parked_sessions: self.sessions.parked().0,
            parked_bytes: self.sessions.parked().1,
            ..Gauges::default()
        };
        for (_, conn) in &self.clients {
            g.open_connections += usize::from(conn.is_open());
            g.pending_events += conn.waiting_events();
            g.live_traffic.add(conn.traffic());
        }
        g
    }

    fn health(&self) -> Response {
        let body = Object::new()
            .str("status", "ok")
            .num("connections", self.clients.len() as u64)
            .num("queued_events", self.pool.queued() as u64)
            .finish();
        Response::json(200, body)
    }
}

pub(super) fn command_of(op: Op) -> Command {
    match op {
        Op::Send { id, data, binary } => Command::Send { id, data, binary },
        Op::Publish {
            channel,
            data,
            binary,
            exclude,
        } => Command::Publish {
            channel,
            data,
            binary,
            exclude,
        },
        Op::Close { id, code, reason } => Command::Close { id, code, reason },
        Op::Subscribe { id, channel } => Command::Subscribe { channel, id },
        Op::Unsubscribe { id, channel } => Command::Unsubscribe { channel, id },
    }
}

/// The answer to `/batch`: each operation's result, with its status, in order.
pub(super) fn batch_response(results: &[String]) -> Response {
    let body = Object::new()
        .num("count", results.len() as u64)
        .raw("results", &format!("[{}]", results.join(",")));
    Response::json(200, body.finish())
}

/// A response's JSON object with its status as the first field: `{"status":200,...}`.
pub(super) fn with_status(response: &Response) -> String {
    match response.body.strip_prefix('{') {
        Some(rest) if rest.trim() != "}" => format!("{{\"status\":{},{rest}", response.status),
        _ => format!("{{\"status\":{}}}", response.status),
    }
}

/// 200 when at least one client got the message (or keeps it for a resume: `queued`), 404
/// when nobody did. In a cluster, `others` is how many other instances received it (their
/// clients may have).
pub(super) fn fanout_response(fanout: Fanout, obj: Object, others: Option<u64>) -> Response {
    let obj = obj
        .num("delivered", fanout.delivered as u64)
        .num("queued", fanout.queued as u64)
        .num("skipped", fanout.skipped as u64);
    let obj = match others {
        Some(n) => obj.num("other_instances", n),
        None => obj,
    };
    if fanout.delivered + fanout.queued > 0 || others.is_some_and(|n| n > 0) {
        Response::json(200, obj.bool("ok", true).finish())
    } else {
        Response::json(
            404,
            obj.str("error", "no client received the message").finish(),
        )
    }
}

fn membership(channel: &str, id: &str, subscribed: bool) -> Response {
    let body = Object::new()
        .bool("ok", true)
        .str("channel", channel)
        .str("id", id)
        .bool("subscribed", subscribed);
    Response::json(200, body.finish())
}

impl Hub {
    fn describe(&self, key: ConnKey) -> String {
        let Some(conn) = self.clients.get(key.index) else {
            return "{}".into();
        };
        describe(conn, self.channels.of(key))
    }
}

fn describe(conn: &Conn, channels: &[String]) -> String {
    let mut meta = Object::new();
    for (name, value) in conn.meta() {
        meta = meta.str(name, value);
    }
    let mut obj = Object::new();
    if let Some(info) = conn.info() {
        let since = info
            .connected_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        obj = obj
            .str("id", &info.id)
            .str("path", &info.target)
            .str("remote_addr", &info.remote.to_string())
            .num("connected_at", since);
    }
    obj.str("state", conn.state_name())
        .bool("parked", conn.parked().is_some())
        .num("pending_events", conn.waiting_events() as u64)
        .raw("channels", &json_array(channels))
        .raw("meta", &meta.finish())
        .finish()
}
