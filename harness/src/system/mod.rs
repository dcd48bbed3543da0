//! The systems under test besides the bundled node: how to configure each, and its client.

pub mod redis;
