//! Pairing: each client invocation with the completion its process gives it next.
//!
//! This is the one place where invocations meet their completions. Whatever reads a history
//! as operations builds on [`pair`]: the checker's operations ([`crate::operations`], with
//! Knossos's semantics), the run's [`crate::Summary`], and the report's timeline.
//!
//! Pairing is lenient, because its readers differ in what they do with a history that breaks
//! the rules: the checker refuses it, naming the first break, while the summary and the report
//! show what can be shown. So a broken history is paired as far as it can be, and every break
//! is returned beside the pairs as a [`Problem`].
//!
//! Nemesis events are faults, not operations: they are skipped.

use std::collections::HashMap;

use crate::error::Error;
use crate::history::{Event, EventType, History, Process};

/// A client invocation and what became of it. Only [`pair`] makes one, so its invocation is
/// always a client's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair<'h> {
    invocation: &'h Event,
    position: usize,
    end: End<'h>,
}

/// How a [`Pair`] ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End<'h> {
    /// Its process's next client event completes it: `ok`, `fail` or `info`. (In a broken
    /// history the completion may name another `f` or key, or an earlier time: see
    /// [`Problem`].)
    Completed(&'h Event),
    /// The history ends before its process completes it: it counts as `info`.
    Pending,
    /// Its process invoked another operation before completing this one, and the next
    /// completion went to that one ([`Problem::Overlap`]).
    Superseded,
}

impl<'h> Pair<'h> {
    /// The invocation.
    pub fn invocation(&self) -> &'h Event {
        self.invocation
    }

    /// The invocation's place in [`History::events`], for [`History::location`].
    pub fn position(&self) -> usize {
        self.position
    }

    /// Its completion, or why it has none.
    pub fn end(&self) -> End<'h> {
        self.end
    }

    /// The client process that performed it.
    pub fn client(&self) -> u64 {
        match self.invocation.process {
            Process::Client(client) => client,
            Process::Nemesis => unreachable!("`pair` pairs client events only"),
        }
    }

    /// Its completion, if it has one.
    pub fn completion(&self) -> Option<&'h Event> {
        match self.end {
            End::Completed(completion) => Some(completion),
            End::Pending | End::Superseded => None,
        }
    }

    /// Nanoseconds from its invocation to its completion, if it completed (0 for a
    /// completion recorded before its invocation, rather than an underflow).
    pub fn latency(&self) -> Option<u64> {
        self.completion()
            .map(|completion| completion.time.saturating_sub(self.invocation.time))
    }
}

/// A way in which a history breaks the pairing rules. Positions are places in
/// [`History::events`]; [`Problem::error`] says it in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A process invoked while an operation of its was still in flight: a process runs one
    /// operation at a time. The earlier operation is [`End::Superseded`].
    Overlap {
        /// The later invocation.
        invocation: usize,
        /// The invocation still in flight.
        pending: usize,
    },
    /// A completion with no operation of its process in flight; it is left out.
    Unmatched {
        /// The completion.
        completion: usize,
    },
    /// A completion whose `f` or key differ from its invocation's; they are paired anyway.
    Mismatched {
        /// The invocation.
        invocation: usize,
        /// The completion.
        completion: usize,
    },
    /// A completion whose time is earlier than its invocation's; they are paired anyway.
    Backwards {
        /// The invocation.
        invocation: usize,
        /// The completion.
        completion: usize,
    },
}

impl Problem {
    /// The problem as an error about `history` (the history it was found in): where, what,
    /// and what was expected.
    pub fn error(&self, history: &History) -> Error {
        let events = history.events();
        let client = |position: usize| events[position].process;
        match *self {
            Problem::Overlap {
                invocation,
                pending,
            } => Error::malformed(
                history.location(invocation),
                format!(
                    "process {} invokes {} while its {} is still pending \
                     (expected a completion first: a process runs one operation at a time)",
                    client(invocation),
                    events[invocation].f,
                    describe(history, pending)
                ),
            ),
            Problem::Unmatched { completion } => Error::malformed(
                history.location(completion),
                format!(
                    "process {} completes {} but has no operation in flight (expected its invocation first)",
                    client(completion),
                    events[completion].f
                ),
            ),
            Problem::Mismatched {
                invocation,
                completion,
            } => Error::malformed(
                history.location(completion),
                format!(
                    "this completion of {} does not match process {}'s pending {} \
                     (expected the same f and key)",
                    target(&events[completion]),
                    client(completion),
                    describe(history, invocation)
                ),
            ),
            Problem::Backwards {
                invocation,
                completion,
            } => Error::malformed(
                history.location(completion),
                format!(
                    "completes at time {} but its {} was invoked at time {} (expected time not to go backwards)",
                    events[completion].time,
                    describe(history, invocation),
                    events[invocation].time
                ),
            ),
        }
    }
}

/// A history's client invocations, each paired with its completion, and where the history
/// breaks the rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pairing<'h> {
    /// Every client invocation, in the order of the history.
    pub pairs: Vec<Pair<'h>>,
    /// Every break of the rules, in the order of the history; empty for a well-formed one.
    pub problems: Vec<Problem>,
}

impl<'h> Pairing<'h> {
    /// The pairs, or the first problem as an error about `history` (the history paired), for
    /// readers that can only use a well-formed history.
    pub fn well_formed(&self, history: &History) -> Result<&[Pair<'h>], Error> {
        match self.problems.first() {
            Some(problem) => Err(problem.error(history)),
            None => Ok(&self.pairs),
        }
    }
}

/// Pairs each client invocation with its process's next client event, in the order of the
/// history. See the module documentation for what becomes of a history that breaks the rules.
pub fn pair(history: &History) -> Pairing<'_> {
    let mut pairing = Pairing::default();
    // For each client with an operation in flight: that operation's place in `pairs`.
    let mut in_flight: HashMap<u64, usize> = HashMap::new();
    for (position, event) in history.events().iter().enumerate() {
        let Process::Client(client) = event.process else {
            continue;
        };
        if event.kind == EventType::Invoke {
            if let Some(earlier) = in_flight.insert(client, pairing.pairs.len()) {
                let earlier = &mut pairing.pairs[earlier];
                earlier.end = End::Superseded;
                pairing.problems.push(Problem::Overlap {
                    invocation: position,
                    pending: earlier.position,
                });
            }
            pairing.pairs.push(Pair {
                invocation: event,
                position,
                end: End::Pending,
            });
            continue;
        }
        let Some(slot) = in_flight.remove(&client) else {
            pairing.problems.push(Problem::Unmatched {
                completion: position,
            });
            continue;
        };
        let pair = &mut pairing.pairs[slot];
        pair.end = End::Completed(event);
        let invocation = pair.invocation;
        // One problem a completion: a mismatched completion's time says little.
        if event.f != invocation.f || event.key != invocation.key {
            pairing.problems.push(Problem::Mismatched {
                invocation: pair.position,
                completion: position,
            });
        } else if event.time < invocation.time {
            pairing.problems.push(Problem::Backwards {
                invocation: pair.position,
                completion: position,
            });
        }
    }
    pairing
}

/// "write of key \"a\" (line 5)": the invocation at `position`, as error messages name it.
fn describe(history: &History, position: usize) -> String {
    let target = target(&history.events()[position]);
    format!("{target} ({})", history.location(position))
}

/// "write of key \"a\"", or "write" in a history without keys.
fn target(event: &Event) -> String {
    match &event.key {
        Some(key) => format!("{} of key {key:?}", event.f),
        None => event.f.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(lines: &[&str]) -> History {
        History::from_jsonl(&lines.join("\n")).unwrap()
    }

    #[test]
    fn every_invocation_is_paired_with_its_process_next_completion() {
        let history = history(&[
            r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":1,"time":11,"process":2,"type":"invoke","f":"write","value":3}"#,
            r#"{"index":2,"time":12,"process":"nemesis","type":"info","f":"kill","value":["n1"]}"#,
            r#"{"index":3,"time":15,"process":2,"type":"fail","f":"write","value":3}"#,
            r#"{"index":4,"time":30,"process":1,"type":"ok","f":"read","value":3}"#,
            r#"{"index":5,"time":31,"process":1,"type":"invoke","f":"read","value":null}"#,
        ]);
        let pairing = pair(&history);
        assert_eq!(pairing.problems, []);
        let events = history.events();
        assert_eq!(
            pairing.pairs,
            [
                Pair {
                    invocation: &events[0],
                    position: 0,
                    end: End::Completed(&events[4]),
                },
                Pair {
                    invocation: &events[1],
                    position: 1,
                    end: End::Completed(&events[3]),
                },
                Pair {
                    invocation: &events[5],
                    position: 5,
                    end: End::Pending,
                },
            ]
        );
        let latencies: Vec<_> = pairing.pairs.iter().map(Pair::latency).collect();
        assert_eq!(latencies, [Some(20), Some(4), None]);
        assert_eq!(pairing.pairs[1].client(), 2);
        assert!(pairing.well_formed(&history).is_ok());
    }

    #[test]
    fn a_broken_history_is_paired_as_far_as_it_can_be_and_each_break_is_named() {
        let history = history(&[
            r#"{"index":0,"time":1,"process":1,"type":"ok","f":"read","value":1}"#,
            r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"write","value":2}"#,
            r#"{"index":3,"time":4,"process":1,"type":"ok","f":"read","value":2}"#,
            r#"{"index":4,"time":9,"process":2,"type":"invoke","f":"write","value":3}"#,
            r#"{"index":5,"time":5,"process":2,"type":"ok","f":"write","value":3}"#,
        ]);
        let pairing = pair(&history);
        let ends: Vec<_> = pairing.pairs.iter().map(Pair::end).collect();
        let events = history.events();
        assert_eq!(
            ends,
            [
                End::Superseded,
                End::Completed(&events[3]),
                End::Completed(&events[5])
            ]
        );
        assert_eq!(pairing.pairs[2].latency(), Some(0));
        assert_eq!(
            pairing.problems,
            [
                Problem::Unmatched { completion: 0 },
                Problem::Overlap {
                    invocation: 2,
                    pending: 1
                },
                Problem::Mismatched {
                    invocation: 2,
                    completion: 3
                },
                Problem::Backwards {
                    invocation: 4,
                    completion: 5
                },
            ]
        );
        assert_eq!(
            pairing.well_formed(&history).unwrap_err().to_string(),
            "line 1: process 1 completes read but has no operation in flight (expected its invocation first)"
        );
    }
}
