//! The push API: an HTTP listener through which backends send to, close and inspect clients.

pub mod batch;
pub mod conn;
pub mod json;
pub mod json_value;
pub mod request;
pub mod response;
pub mod routes;
