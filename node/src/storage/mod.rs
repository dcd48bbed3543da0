//! Durable storage for the Raft core: the write-ahead log and snapshot files.
