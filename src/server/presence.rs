//! Presence: who is in which channel. The hub answers for its own connections; the answers
//! are built from lists, so those of several instances (see `server::remote`) merge into one.

use super::hub::Hub;
use crate::api::json::{self, Object};
use crate::api::response::Response;
use crate::api::routes::ApiError;
use crate::conn_id::ConnKey;

impl Hub {
    /// Ids of this instance's members of channel `name`; `None` when it has none.
    pub(super) fn member_ids(&self, name: &str) -> Option<Vec<String>> {
        let members = self.channels.members(name)?;
        let keys: Vec<ConnKey> = members.iter().copied().collect();
        Some(self.ids_of(&keys))
    }

    /// This instance's channels with their member counts, sorted by name.
    pub(super) fn channel_counts(&self) -> Vec<(String, u64)> {
        self.channels
            .list()
            .into_iter()
            .map(|(name, n)| (name.to_string(), n as u64))
            .collect()
    }

    /// Ids of this instance's connections that take messages (open or waiting for a resume), or of its members of `channel`.
    pub(super) fn connection_ids(&self, channel: Option<&str>) -> Vec<String> {
        match channel {
            Some(name) => self.member_ids(name).unwrap_or_default(),
            None => {
                let keys: Vec<ConnKey> = self
                    .clients
                    .iter()
                    .filter(|(_, c)| c.takes_messages())
                    .map(|(_, c)| c.key)
                    .collect();
                self.ids_of(&keys)
            }
        }
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

/// `GET /connections[?channel=]`; `ids` sorted by the caller (as every list here is), so that
/// answers are stable.
pub(super) fn connections_response(ids: Vec<String>) -> Response {
    let body = Object::new()
        .num("count", ids.len() as u64)
        .raw("connections", &json_array(&ids))
        .finish();
    Response::json(200, body)
}

/// `GET /channels`, `counts` sorted by name: counts of the same channel (from several
/// instances, next to each other) add up.
pub(super) fn channels_response(counts: Vec<(String, u64)>) -> Response {
    let mut items: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some((name, _)) = counts.get(i) {
        let same = counts[i..].iter().take_while(|(n, _)| n == name);
        let members: u64 = same.clone().map(|(_, n)| n).sum();
        let run = same.count();
        items.push(
            Object::new()
                .str("name", name)
                .num("members", members)
                .finish(),
        );
        i += run;
    }
    let body = Object::new()
        .num("count", items.len() as u64)
        .raw("channels", &format!("[{}]", items.join(",")));
    Response::json(200, body.finish())
}

/// `GET /channels/{name}`: 404 when nobody is in it.
pub(super) fn members_response(name: &str, ids: Vec<String>) -> Result<Response, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::NotFound(format!("channel {name}")));
    }
    let body = Object::new()
        .str("name", name)
        .num("count", ids.len() as u64)
        .raw("members", &json_array(&ids));
    Ok(Response::json(200, body.finish()))
}

pub(super) fn json_array(items: &[String]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_several_instances_merge() {
        let counts = vec![("a".into(), 1), ("b".into(), 2), ("b".into(), 3)];
        let body = channels_response(counts).body;
        let want = r#"{"count":2,"channels":[{"name":"a","members":1},{"name":"b","members":5}]}"#;
        assert_eq!(body, want);
        let ids = vec!["x".to_string(), "y".to_string()];
        let body = members_response("r", ids).unwrap().body;
        assert_eq!(body, r#"{"name":"r","count":2,"members":["x","y"]}"#);
        assert_eq!(members_response("r", vec![]).unwrap_err().status(), 404);
    }
}
