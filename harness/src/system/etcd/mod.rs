//! etcd (Debian's `etcd-server`, 3.4), tested through its v3 JSON gateway: the client side.

mod classify;
pub mod gateway;
