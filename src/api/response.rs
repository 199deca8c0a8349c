//! Push-API responses: a status, a JSON body, and the bytes on the wire.

use super::json;
use super::routes::ApiError;
use crate::ws::handshake::status_reason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn json(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "application/json",
            body,
            headers: Vec::new(),
        }
    }

    /// Prometheus text exposition.
    pub fn metrics(body: String) -> Response {
        Response {
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ..Response::json(200, body)
        }
    }

    /// `{"error": "..."}` with the error's status, plus the headers that status calls for.
    pub fn error(err: &ApiError) -> Response {
        let mut response = Response::json(err.status(), json::error_body(&err.to_string()));
        match err {
            ApiError::Unauthorized => response.headers.push(("WWW-Authenticate", "Bearer".into())),
            ApiError::MethodNotAllowed(allow) => response.headers.push(("Allow", (*allow).into())),
            _ => {}
        }
        response
    }

    /// An error found while reading the request: the status comes from the parser.
    pub fn bad_request(status: u16, message: &str) -> Response {
        Response::json(status, json::error_body(message))
    }

    /// The response as bytes. A HEAD answer has the headers of a GET but no body.
    pub fn encode(&self, keep_alive: bool, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            status_reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}
