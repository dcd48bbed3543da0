//! Robustness of the whole node against whatever peers send: a property test that steps
//! random, often nonsensical messages into a follower or a leader.

use bytes::Bytes;
use proptest::prelude::*;

use super::testing::{cycle, elect, entry, plain_config, recovered};
use super::{Entry, Message, MessageBody, Role, Snapshot, SnapshotMeta};

/// Small numbers, plus the extremes a corrupt or hostile peer could send.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..12, 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1)]
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    (number(), number(), 0usize..4).prop_map(|(first, term, count)| {
        (0..count as u64)
            .map(|k| entry(first.saturating_add(k), term))
            .collect()
    })
}

fn body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (number(), number()).prop_map(|(last_log_index, last_log_term)| {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            }
        }),
        (number(), number(), any::<bool>()).prop_map(
            |(last_log_index, last_log_term, transfer)| {
                MessageBody::RequestVote {
                    last_log_index,
                    last_log_term,
                    transfer,
                }
            }
        ),
        any::<bool>().prop_map(|granted| MessageBody::PreVoteResponse { granted }),
        any::<bool>().prop_map(|granted| MessageBody::RequestVoteResponse { granted }),
        (number(), number(), entries(), number(), number()).prop_map(
            |(prev_log_index, prev_log_term, entries, leader_commit, read_round)| {
                MessageBody::AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                    read_round,
                }
            }
        ),
        (
            any::<bool>(),
            number(),
            number(),
            proptest::option::of(number()),
            number()
        )
            .prop_map(
                |(success, match_index, conflict_index, conflict_term, read_round)| {
                    MessageBody::AppendEntriesResponse {
                        success,
                        match_index,
                        conflict_index,
                        conflict_term,
                        read_round,
                    }
                }
            ),
        (number(), number()).prop_map(|(leader_commit, read_round)| {
            MessageBody::Heartbeat {
                leader_commit,
                read_round,
            }
        }),
        number().prop_map(|read_round| MessageBody::HeartbeatResponse { read_round }),
        (number(), number()).prop_map(|(index, term)| MessageBody::InstallSnapshot {
            snapshot: Snapshot {
                meta: SnapshotMeta { index, term },
                membership: None,
                data: Bytes::new()
            },
        }),
        Just(MessageBody::TimeoutNow),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (1u64..=4, number(), body()).prop_map(|(from, term, body)| Message {
        from,
        to: 1,
        term,
        body,
    })
}

proptest! {
    /// Whatever peers send, a node never panics, its term never decreases, and its
    /// indices stay ordered: snapshot <= applied <= commit <= last.
    #[test]
    fn arbitrary_messages_never_break_a_node(
        start_as_leader in any::<bool>(),
        inputs in prop::collection::vec((message(), 0u32..3, proptest::option::of(0u64..5)), 1..40),
    ) {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1, 1]);
        if start_as_leader {
            elect(&mut raft);
        }
        let mut term = raft.term;
        for (msg, ticks, transfer_to) in inputs {
            raft.step(msg);
            if let Some(target) = transfer_to {
                let _ = raft.transfer_leadership(target);
            }
            for _ in 0..ticks {
                raft.tick();
            }
            let _ = raft.propose(Bytes::from_static(b"x"));
            let _ = raft.read_index(1);
            while raft.has_ready() {
                cycle(&mut raft);
            }
            let status = raft.status();
            prop_assert!(status.term >= term);
            term = status.term;
            prop_assert!(status.snapshot_index <= status.applied, "{status:?}");
            prop_assert!(status.applied <= status.commit, "{status:?}");
            prop_assert!(status.commit <= status.last_index, "{status:?}");
        }
    }
}

/// Found by the property test: a snapshot claiming the last possible index, then one a step
/// before it (after which a leader's no-op and its next entry ran out of indexes).
#[test]
fn a_snapshot_at_an_index_no_log_reaches_is_ignored() {
    for index in [u64::MAX, u64::MAX - 1, u64::MAX / 2 + 1] {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1, 1]);
        let meta = SnapshotMeta { index, term: 1 };
        let snapshot = Snapshot {
            meta,
            membership: None,
            data: Bytes::new(),
        };
        raft.step(Message {
            from: 2,
            to: 1,
            term: 1,
            body: MessageBody::InstallSnapshot { snapshot },
        });
        assert_eq!(raft.status().snapshot_index, 0, "a snapshot at {index}");
    }
}

/// Found by the property test: a peer pushing the term to its limit.
#[test]
fn a_term_at_its_limit_does_not_overflow_when_the_election_timer_fires() {
    let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1, 1]);
    let body = MessageBody::RequestVote {
        last_log_index: 0,
        last_log_term: 0,
        transfer: false,
    };
    raft.step(Message {
        from: 2,
        to: 1,
        term: u64::MAX,
        body,
    });
    for _ in 0..100 {
        raft.tick();
    }
    assert_eq!(
        (raft.status().term, raft.status().role),
        (u64::MAX, Role::Follower)
    );
}
