//! History types and formats, the linearizability (WGL) and lost-write checkers.
