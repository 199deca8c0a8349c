//! The reactor's side of `ws::offload`: what workers did with compressed messages, and the
//! push API's large messages compressed on a worker before the push is carried out.
//!
//! A push whose message (any of a batch's) is at least `ws::offload::DEFLATE_MIN` bytes, with
//! compression on, is answered later: its messages go to the pool (`Work::Compress`), and when
//! they come back compressed the command is carried out with those frames, so the reactor only
//! copies them. The push-API connection reads nothing more meanwhile (see `api::conn`), so the
//! pushes of one connection keep their order. A large push waits for a free worker, as an
//! event does.

use super::Server;
use super::clients::get;
use super::hub::Hub;
use crate::api::batch::Op;
use crate::api::conn::Answer;
use crate::api::response::Response;
use crate::api::routes::{ApiError, Command};
use crate::events::{Done, Inflated, Job, Work};
use crate::ws::message::{Deflated, Message};
use crate::ws::offload::DEFLATE_MIN;

impl Hub {
    /// Counts a message the worker inflated; a message that did not inflate fails its
    /// connection here (see `Conn::refuse`), and then there is nothing more to do.
    pub(super) fn refused(&mut self, done: &Done) -> bool {
        let Some(inflated) = done.inflated else {
            return false;
        };
        let Some(key) = done.key else { return false };
        let Some(conn) = get(&mut self.clients, key) else {
            return matches!(inflated, Inflated::Refused { .. });
        };
        match inflated {
            Inflated::Bytes(len) => {
                conn.inflated(len);
                false
            }
            Inflated::Refused { code, reason } => {
                conn.refuse(code, reason, &self.limits);
                self.update_saturation();
                self.after(key);
                true
            }
        }
    }

    /// Carries out a push-API command now, or, when compression is on and it carries a
    /// large message, once a worker compressed it.
    pub(super) fn execute_or_offload(
        &mut self,
        command: Command,
        index: usize,
    ) -> Result<Answer, ApiError> {
        let Some(settings) = self.limits.deflate else {
            return self.execute(command).map(Answer::Now);
        };
        let messages = large_messages(&command, settings.min_size.max(DEFLATE_MIN));
        if messages.iter().all(Option::is_none) {
            return self.execute(command).map(Answer::Now);
        }
        let ticket = self.offloads.wait(index, command);
        let level = settings.level;
        self.pool.submit(Job {
            key: None,
            work: Work::Compress {
                ticket,
                messages,
                level,
            },
        });
        Ok(Answer::Later(ticket))
    }
}

impl Server {
    /// A push's messages came back compressed: the push is carried out, and its connection
    /// answered and read on (it may have more requests waiting).
    pub(super) fn on_compressed(&mut self, ticket: u64, deflated: Vec<Option<Deflated>>) {
        let Some((index, command)) = self.hub.offloads.take(ticket) else {
            return;
        };
        let response = self
            .hub
            .execute_prepared(command, deflated)
            .unwrap_or_else(|e| {
                log::info!("push API: {} {e}", e.status());
                Response::error(&e)
            });
        match self.api.get_mut(index) {
            Some(conn) if conn.waiting_for() == Some(ticket) => conn.resume(&response),
            _ => return,
        }
        self.on_api_ready(index, true, true);
    }
}

/// The command's messages worth compressing ahead, in the order `Hub::execute_prepared` takes
/// them: one entry per message (per operation of a batch), `None` for those left as they are.
fn large_messages(command: &Command, min: usize) -> Vec<Option<Message>> {
    let large = |data: &tungstenite::Bytes, binary: bool| {
        (data.len() >= min).then(|| Message::new(binary, data.clone()))
    };
    match command {
        Command::Send { data, binary, .. }
        | Command::Publish { data, binary, .. }
        | Command::Broadcast { data, binary, .. } => vec![large(data, *binary)],
        Command::Batch(ops) => ops
            .iter()
            .map(|op| match op {
                Ok(Op::Send { data, binary, .. } | Op::Publish { data, binary, .. }) => {
                    large(data, *binary)
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
