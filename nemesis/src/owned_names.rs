//! Names that carry the pid of the process that made them, `<prefix><pid>-<n>`: iptables
//! chains, FUSE mounts, network namespaces. Two runs, or two objects of one run, never share
//! a name, and what a SIGKILLed run left behind is recognised by its dead pid.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// `<pid>-<n>`: this process's pid and a number drawn from `counter`, fresh in this process.
pub(crate) fn fresh_id(counter: &AtomicU32) -> String {
    format!(
        "{}-{}",
        std::process::id(),
        counter.fetch_add(1, Ordering::Relaxed)
    )
}

/// The pid in a name `<prefix><pid>` or `<prefix><pid>-...`.
pub(crate) fn owner(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.split('-').next()?.parse().ok()
}

/// Whether `name` is `<prefix><pid>...` of a process that no longer exists. This process's
/// names never are.
pub(crate) fn is_leftover(name: &str, prefix: &str) -> bool {
    owner(name, prefix).is_some_and(|owner| {
        owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_carry_this_pid_and_never_repeat() {
        let counter = AtomicU32::new(0);
        let pid = std::process::id();
        assert_eq!(fresh_id(&counter), format!("{pid}-0"));
        assert_eq!(fresh_id(&counter), format!("{pid}-1"));
    }

    #[test]
    fn only_names_of_gone_processes_are_leftovers() {
        let own = std::process::id();
        assert_eq!(owner("FAULTLINE-77-3", "FAULTLINE-"), Some(77));
        assert_eq!(owner("faultline-77", "faultline-"), Some(77));
        assert_eq!(owner("faultline-77-0-hub", "FAULTLINE-"), None);
        // pid 1 always exists; 4194305 is above the kernel's largest pid.
        assert!(is_leftover("fl4194305-0", "fl"));
        assert!(!is_leftover("fl1-0", "fl"));
        assert!(!is_leftover(&format!("fl{own}-0"), "fl"));
        assert!(!is_leftover("flannel.1", "fl"));
        assert!(!is_leftover("docker0", "fl"));
    }
}
