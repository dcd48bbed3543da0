//! Faults: process kill/pause/restart and network partitions (iptables or TCP proxy).
