//! The slab of WebSocket connections, looked up by key: a key whose slot went to a newer
//! connection finds nothing. Shared by the hub and fan-out, below both.

use slab::Slab;

use crate::conn_id::ConnKey;
use crate::ws::conn::Conn;

pub type Clients = Slab<Conn>;

/// The connection with this key, unless its slot went to a newer connection.
pub fn get(clients: &mut Clients, key: ConnKey) -> Option<&mut Conn> {
    clients.get_mut(key.index).filter(|c| c.key == key)
}

/// Like [`get`], read-only.
pub fn peek(clients: &Clients, key: ConnKey) -> Option<&Conn> {
    clients.get(key.index).filter(|c| c.key == key)
}
