//! The push API: an HTTP listener through which backends send to, close and inspect clients.

pub mod conn;
pub mod json;
pub mod request;
pub mod response;
pub mod routes;
