//! Carrying out push-API commands against the connections and channels.

use super::fanout::Fanout;
use super::hub::Hub;
use crate::api::batch::Op;
use crate::api::json::{self, Object};
use crate::api::response::Response;
use crate::api::routes::{ApiError, Command};
use crate::conn_id::ConnKey;
use crate::ws::conn::{Accepted, Conn, SendError, Written};
use crate::ws::message::{Frames, Message};

impl Hub {
    pub fn execute(&mut self, command: Command) -> Result<Response, ApiError> {
        match command {
            Command::Health => Ok(self.health()),
            Command::Metrics => Ok(Response::metrics(self.metrics.render(&self.gauges()))),
            Command::Send { id, data, binary } => self.send(&id, Message::new(binary, data)),
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
            Command::ListConnections { channel } => Ok(self.list_connections(channel.as_deref())),
            Command::ListChannels => Ok(self.list_channels()),
            Command::ChannelInfo { name } => self.channel_info(&name),
            Command::Publish {
                channel,
                data,
                binary,
                exclude,
            } => {
                let message = Message::new(binary, data);
                let fanout = self.fan_out(|r| {
                    let exclude = r.exclusions(&exclude, None);
                    r.publish(std::slice::from_ref(&channel), &message, &exclude)
                });
                Ok(fanout_response(
                    fanout,
                    Object::new().str("channel", &channel),
                ))
            }
            Command::Broadcast {
                prefix,
                data,
                binary,
                exclude,
            } => {
                let message = Message::new(binary, data);
                let fanout = self.fan_out(|r| {
                    let exclude = r.exclusions(&exclude, None);
                    r.broadcast(prefix.as_deref(), &message, &exclude)
                });
                Ok(fanout_response(
                    fanout,
                    Object::new().str("path", prefix.as_deref().unwrap_or("/")),
                ))
            }
            Command::Subscribe { channel, id } => {
                let key = self.open_conn(&id)?.key;
                self.channels
                    .subscribe(&channel, key)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                Ok(membership(&channel, &id, true))
            }
            Command::Batch(ops) => Ok(self.batch(ops)),
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
    fn batch(&mut self, ops: Vec<Result<Op, String>>) -> Response {
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match op {
                Ok(op) => self
                    .execute(command_of(op))
                    .unwrap_or_else(|e| Response::error(&e)),
                Err(why) => Response::error(&ApiError::BadRequest(why)),
            };
            results.push(with_status(&response));
        }
        let body = Object::new()
            .num("count", results.len() as u64)
            .raw("results", &format!("[{}]", results.join(",")));
        Response::json(200, body.finish())
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

    fn send(&mut self, id: &str, message: Message) -> Result<Response, ApiError> {
        let conn = self.open_conn(id)?;
        let key = conn.key;
        let bytes = message.payload.len();
        let sent = conn.send_message(&mut Frames::new(message), Written::Nothing);
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

    fn health(&self) -> Response {
        let body = Object::new()
            .str("status", "ok")
            .num("connections", self.clients.len() as u64)
            .num("queued_events", self.pool.queued() as u64)
            .finish();
        Response::json(200, body)
    }

    fn list_connections(&self, channel: Option<&str>) -> Response {
        let keys: Vec<ConnKey> = match channel {
            Some(name) => self
                .channels
                .members(name)
                .map(|m| m.iter().copied().collect())
                .unwrap_or_default(),
            None => self
                .clients
                .iter()
                .filter(|(_, c)| c.takes_messages())
                .map(|(_, c)| c.key)
                .collect(),
        };
        let ids = self.ids_of(&keys);
        let body = Object::new()
            .num("count", ids.len() as u64)
            .raw("connections", &json_array(&ids))
            .finish();
        Response::json(200, body)
    }

    fn list_channels(&self) -> Response {
        let mut items = Vec::new();
        for (name, members) in self.channels.list() {
            items.push(
                Object::new()
                    .str("name", name)
                    .num("members", members as u64)
                    .finish(),
            );
        }
        let body = Object::new()
            .num("count", items.len() as u64)
            .raw("channels", &format!("[{}]", items.join(",")));
        Response::json(200, body.finish())
    }

    fn channel_info(&self, name: &str) -> Result<Response, ApiError> {
        let members = self
            .channels
            .members(name)
            .ok_or_else(|| ApiError::NotFound(format!("channel {name}")))?;
        let keys: Vec<ConnKey> = members.iter().copied().collect();
        let ids = self.ids_of(&keys);
        let body = Object::new()
            .str("name", name)
            .num("count", ids.len() as u64)
            .raw("members", &json_array(&ids));
        Ok(Response::json(200, body.finish()))
    }

    /// Public ids of these keys, sorted so answers are stable.
    fn ids_of(&self, keys: &[ConnKey]) -> Vec<String> {
        let mut ids: Vec<String> = keys
            .iter()
            .filter_map(|k| self.clients.get(k.index).filter(|c| c.key == *k))
            .filter_map(|c| c.info().map(|i| i.id.clone()))
            .collect();
        ids.sort_unstable();
        ids
    }
}

fn command_of(op: Op) -> Command {
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

/// A response's JSON object with its status as the first field: `{"status":200,...}`.
fn with_status(response: &Response) -> String {
    match response.body.strip_prefix('{') {
        Some(rest) if rest.trim() != "}" => format!("{{\"status\":{},{rest}", response.status),
        _ => format!("{{\"status\":{}}}", response.status),
    }
}

/// 200 when at least one client got the message (or keeps it for a resume: `queued`), 404
/// when nobody did.
fn fanout_response(fanout: Fanout, obj: Object) -> Response {
    let obj = obj
        .num("delivered", fanout.delivered as u64)
        .num("queued", fanout.queued as u64)
        .num("skipped", fanout.skipped as u64);
    if fanout.delivered + fanout.queued > 0 {
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

fn json_array(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::escape_into(&mut out, item);
    }
    out.push(']');
    out
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
