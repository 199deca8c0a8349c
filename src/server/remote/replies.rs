//! Between push-API commands and cluster messages: the request another instance is asked to
//! carry out, and the push-API answer a finished call gives.

use crate::api::batch::Op;
use crate::api::json::Object;
use crate::api::response::Response;
use crate::api::routes::{ApiError, Command};
use crate::cluster::calls::Outcome;
use crate::cluster::wire::{Reply, Request};
use crate::server::commands::fanout_response;
use crate::server::fanout::Fanout;
use crate::server::presence::{channels_response, connections_response, members_response};

/// What a waiting call is, and this instance's part of its answer.
#[derive(Debug)]
pub(super) enum What {
    Forward { id: String },
    Publish { fanout: Fanout, head: Object },
    Members { name: String, ids: Vec<String> },
    Channels(Vec<(String, u64)>),
    Connections(Vec<String>),
}

/// The connection a command is for, if it is for one.
pub(super) fn target(command: &Command) -> Option<&str> {
    match command {
        Command::Send { id, .. }
        | Command::Close { id, .. }
        | Command::Info { id }
        | Command::Subscribe { id, .. }
        | Command::Unsubscribe { id, .. } => Some(id),
        _ => None,
    }
}

pub(super) fn request_of(command: Command) -> Result<(String, Request), ApiError> {
    let op = match command {
        Command::Send { id, data, binary } => Op::Send { id, data, binary },
        Command::Close { id, code, reason } => Op::Close { id, code, reason },
        Command::Subscribe { channel, id } => Op::Subscribe { id, channel },
        Command::Unsubscribe { channel, id } => Op::Unsubscribe { id, channel },
        Command::Info { id } => return Ok((id.clone(), Request::Info { id })),
        _ => return Err(ApiError::BadRequest("not a call for one connection".into())),
    };
    let id = match &op {
        Op::Send { id, .. }
        | Op::Close { id, .. }
        | Op::Subscribe { id, .. }
        | Op::Unsubscribe { id, .. } => id.clone(),
        Op::Publish { channel, .. } => channel.clone(),
    };
    Ok((id, Request::Op(op)))
}

/// The push-API answer to a finished call.
pub(super) fn respond(what: What, outcome: Outcome) -> Response {
    let unavailable = |why: String| Response::error(&ApiError::Unavailable(why));
    let answers = match outcome {
        Outcome::Failed(why) => return unavailable(why),
        Outcome::TimedOut => {
            return unavailable("no answer from the cluster within --backend-timeout".into());
        }
        Outcome::NotHeld => {
            let id = match &what {
                What::Forward { id } => id.as_str(),
                _ => "",
            };
            return Response::error(&ApiError::NotFound(format!("connection {id}")));
        }
        Outcome::Answered(Reply::Response { status, body }) => return Response::json(status, body),
        Outcome::Answered(_) => {
            return unavailable("unexpected answer from another instance".into());
        }
        Outcome::Reached(others) => match what {
            What::Publish { fanout, head } => return fanout_response(fanout, head, Some(others)),
            _ => return unavailable("unexpected answer from redis".into()),
        },
        Outcome::Gathered { answers, .. } => answers,
    };
    let (mut ids, mut counts) = (Vec::new(), Vec::new());
    for reply in answers {
        match reply {
            Reply::Ids(more) => ids.extend(more),
            Reply::Channels(more) => counts.extend(more),
            Reply::Response { .. } => {}
        }
    }
    // Each instance's list is sorted; together they are sorted again.
    match what {
        What::Members { name, ids: here } => {
            ids.extend(here);
            ids.sort_unstable();
            members_response(&name, ids).unwrap_or_else(|e| Response::error(&e))
        }
        What::Channels(here) => {
            counts.extend(here);
            counts.sort_unstable();
            channels_response(counts)
        }
        What::Connections(here) => {
            ids.extend(here);
            ids.sort_unstable();
            connections_response(ids)
        }
        What::Forward { .. } | What::Publish { .. } => unavailable("unexpected answer".into()),
    }
}
