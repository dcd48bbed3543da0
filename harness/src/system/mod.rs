//! The systems Faultline can test, besides its own node: how to talk to each.

pub mod etcd;
