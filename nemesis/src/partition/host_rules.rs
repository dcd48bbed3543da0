//! Partitions as iptables rules on each receiving node's own host, run through a
//! [`HostFirewall`] the caller provides: SSH to a remote host, or entering a node's network
//! namespace (`netns.rs`). Cutting the directed link `FROM -> TO` drops, on TO's host, every
//! packet from FROM's address, as Jepsen does.
//!
//! The rules name no ports: a node's messages to a peer do not always travel on connections
//! it opened (etcd streams a leader's messages to a follower over a connection the follower
//! opened), and dropping everything from FROM at TO cuts what FROM says to TO on any
//! connection. Over TCP that also stalls the connections TO opens to FROM, whose answers are
//! dropped: a one-way cut holds for messages, not for connections. Each node is taken to
//! have a host (a firewall) of its own; the harness's clients connect from an address no
//! rule names, so a partition never cuts a client off.
//!
//! The rules live in a chain of their own, `FAULTLINE-<pid>-<n>` (the name of
//! `iptables.rs`'s chains), created on a host at the first cut that needs it and hooked
//! into `INPUT` by one jump rule. A host's own rules are never touched: healing flushes our
//! chain, teardown unhooks and deletes it. A run that dies before teardown leaves its chains:
//! in namespaces they die with the namespaces; on remote hosts they stay (the pid in their
//! names is the harness machine's, so nothing there can tell them dead yet). There is no
//! teardown on drop, as
//! [`super::iptables::IptablesPartitioner`] has: the firewall is async (SSH), and drop is not.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Debug;
use std::net::Ipv4Addr;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::Mutex;

use super::iptables::fresh_chain;
use super::{PartitionError, Partitioner};
use crate::cluster::NodeName;
use crate::grudge::Link;

/// Why a [`HostFirewall`] command failed, in the firewall's own words.
pub type FirewallError = Box<dyn Error + Send + Sync + 'static>;

/// Runs `iptables` on the host of a node: the one place a backend that cuts links at their
/// receiver needs to reach, whether that host is a remote machine (over SSH) or a node's
/// network namespace. Object-safe, so the harness can hand in any runner.
pub trait HostFirewall: Send + Sync + Debug {
    /// Runs `iptables ARGS` (with whatever the runner needs besides, such as `-w` to wait for
    /// the xtables lock) on the host of `node`, and returns what it printed. Fails if the
    /// command could not run or exited with an error; the error need not name the node (the
    /// caller's message does).
    fn iptables<'a>(
        &'a self,
        node: &'a str,
        args: &'a [String],
    ) -> BoxFuture<'a, Result<String, FirewallError>>;
}

/// Cuts links with `DROP` rules on each receiving node's host, in a chain of its own there,
/// through a [`HostFirewall`].
#[derive(Debug)]
pub struct HostRules {
    firewall: Arc<dyn HostFirewall>,
    addrs: BTreeMap<NodeName, Ipv4Addr>,
    chain: String,
    /// Behind an async mutex held across the commands: a cut that creates a chain must not
    /// interleave with another creating it, nor with a teardown removing it.
    installed: Mutex<Installed>,
}

/// What a [`HostRules`] has put on hosts.
#[derive(Debug, Default)]
struct Installed {
    /// The nodes on whose host the chain exists, each with whether its jump rule is in
    /// `INPUT` (not when hooking failed and so did deleting the chain).
    chains: BTreeMap<NodeName, bool>,
    torn_down: bool,
}

/// A cut asked of a [`HostRules`] after its teardown.
#[derive(Debug, thiserror::Error)]
#[error("the partitioner was torn down")]
struct TornDown;

impl HostRules {
    /// A partitioner for nodes whose peer traffic comes from `addrs`, one IPv4 address per
    /// node, applying rules through `firewall`. It runs no command until links are cut.
    pub fn new(firewall: Arc<dyn HostFirewall>, addrs: BTreeMap<NodeName, Ipv4Addr>) -> Self {
        HostRules {
            firewall,
            addrs,
            chain: fresh_chain(),
            installed: Mutex::new(Installed::default()),
        }
    }

    /// The chain's name on every host, `FAULTLINE-<pid>-<n>`.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Counts as torn down without running anything: for hosts that are gone, taking the
    /// chains with them (the namespaces of a torn-down `NodeNetwork`).
    pub(crate) async fn forget(&self) {
        let mut installed = self.installed.lock().await;
        installed.chains.clear();
        installed.torn_down = true;
    }

    fn addr(&self, node: &str) -> Result<Ipv4Addr, PartitionError> {
        self.addrs
            .get(node)
            .copied()
            .ok_or_else(|| PartitionError::UnknownNode(node.to_owned()))
    }

    async fn run(&self, node: &str, args: &[&str]) -> Result<String, FirewallError> {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        self.firewall.iptables(node, &args).await
    }

    /// Makes sure the chain exists on `node`'s host and is hooked into `INPUT`.
    async fn install(&self, installed: &mut Installed, node: &str) -> Result<(), PartitionError> {
        let chain = self.chain.as_str();
        match installed.chains.get(node) {
            Some(true) => return Ok(()),
            Some(false) => {}
            None => {
                self.run(node, &["-N", chain]).await.map_err(|error| {
                    PartitionError::backend(
                        format!("could not create chain {chain} at {node}"),
                        error,
                    )
                })?;
                installed.chains.insert(node.to_owned(), false);
            }
        }
        // First in INPUT (`-I` inserts at the top), so that no ACCEPT rule of the host's
        // lets the packets past our chain.
        match self.run(node, &["-I", "INPUT", "-j", chain]).await {
            Ok(_) => {
                installed.chains.insert(node.to_owned(), true);
                Ok(())
            }
            Err(error) => {
                // An unhooked chain does nothing, but would be left behind: delete it now,
                // or leave it to the next cut (which hooks it) or to teardown.
                if self.run(node, &["-X", chain]).await.is_ok() {
                    installed.chains.remove(node);
                }
                let message = format!("could not hook chain {chain} into INPUT at {node}");
                Err(PartitionError::backend(message, error))
            }
        }
    }

    /// Unhooks, flushes and deletes the chain on `node`'s host, each step tried even if one
    /// fails; forgets the host once the chain is gone.
    async fn remove(&self, installed: &mut Installed, node: &str) -> Result<(), FirewallError> {
        let chain = self.chain.as_str();
        let mut first_error = None;
        if installed.chains.get(node) == Some(&true) {
            match self.run(node, &["-D", "INPUT", "-j", chain]).await {
                // Recorded at once, so that a retried teardown does not delete it twice.
                Ok(_) => _ = installed.chains.insert(node.to_owned(), false),
                Err(error) => _ = first_error.get_or_insert(error),
            }
        }
        if let Err(error) = self.run(node, &["-F", chain]).await {
            first_error.get_or_insert(error);
        }
        match self.run(node, &["-X", chain]).await {
            Ok(_) => _ = installed.chains.remove(node),
            Err(error) => _ = first_error.get_or_insert(error),
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Partitioner for HostRules {
    /// Adds one rule per receiving node, naming every sender cut off from it, after creating
    /// the chain on that node's host if this is its first cut.
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        let mut senders: BTreeMap<&str, BTreeMap<&str, Ipv4Addr>> = BTreeMap::new();
        for link in links.iter().filter(|link| link.from != link.to) {
            let from = self.addr(&link.from)?;
            self.addr(&link.to)?;
            senders
                .entry(&link.to)
                .or_default()
                .insert(&link.from, from);
        }
        if senders.is_empty() {
            return Ok(());
        }
        let mut installed = self.installed.lock().await;
        if installed.torn_down {
            return Err(PartitionError::backend("cannot cut links", TornDown));
        }
        for (to, from) in senders {
            self.install(&mut installed, to).await?;
            let sources: Vec<String> = from.values().map(Ipv4Addr::to_string).collect();
            let rule = ["-A", &self.chain, "-s", &sources.join(","), "-j", "DROP"];
            self.run(to, &rule).await.map_err(|error| {
                let names: Vec<&str> = from.keys().copied().collect();
                let message = format!("could not cut {} -> {to}", names.join(","));
                PartitionError::backend(message, error)
            })?;
        }
        Ok(())
    }

    /// Flushes the chain on every host that has it, each tried even if one fails.
    async fn heal(&self) -> Result<(), PartitionError> {
        let installed = self.installed.lock().await;
        let mut first_error = None;
        for node in installed.chains.keys() {
            if let Err(error) = self.run(node, &["-F", &self.chain]).await {
                let message = format!("could not flush chain {} at {node}", self.chain);
                first_error.get_or_insert(PartitionError::backend(message, error));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Unhooks and deletes the chain on every host that has it, each tried even if one
    /// fails. A failed teardown can be retried: it only retries what is left.
    async fn teardown(&self) -> Result<(), PartitionError> {
        let mut installed = self.installed.lock().await;
        if installed.torn_down {
            return Ok(());
        }
        let nodes: Vec<NodeName> = installed.chains.keys().cloned().collect();
        let mut first_error = None;
        for node in nodes {
            if let Err(error) = self.remove(&mut installed, &node).await {
                let message = format!("could not remove chain {} at {node}", self.chain);
                first_error.get_or_insert(PartitionError::backend(message, error));
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => {
                installed.torn_down = true;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::owned_names::owner;
    use crate::partition::iptables::CHAIN_PREFIX;

    /// A [`HostFirewall`] that runs nothing: it records each command's arguments per node,
    /// and fails the commands it is told to.
    #[derive(Debug, Default)]
    pub(crate) struct FakeFirewall {
        commands: std::sync::Mutex<Vec<(NodeName, String)>>,
        /// (node, the command's first argument, e.g. `-I`) pairs that fail; `*` any command.
        failing: std::sync::Mutex<BTreeSet<(NodeName, String)>>,
    }

    impl FakeFirewall {
        /// Every command run since the last call, as `node: args`.
        pub(crate) fn take(&self) -> Vec<String> {
            let mut commands = self.commands.lock().unwrap();
            commands
                .drain(..)
                .map(|(node, args)| format!("{node}: {args}"))
                .collect()
        }

        /// Makes `node`'s commands starting with `op` fail (`*`: all of them).
        pub(crate) fn fail(&self, node: &str, op: &str) {
            let mut failing = self.failing.lock().unwrap();
            failing.insert((node.to_owned(), op.to_owned()));
        }

        pub(crate) fn recover(&self) {
            self.failing.lock().unwrap().clear();
        }
    }

    impl HostFirewall for FakeFirewall {
        fn iptables<'a>(
            &'a self,
            node: &'a str,
            args: &'a [String],
        ) -> BoxFuture<'a, Result<String, FirewallError>> {
            Box::pin(async move {
                let line = args.join(" ");
                self.commands
                    .lock()
                    .unwrap()
                    .push((node.to_owned(), line.clone()));
                let failing = self.failing.lock().unwrap();
                let op = args.first().cloned().unwrap_or_default();
                if failing.contains(&(node.to_owned(), op))
                    || failing.contains(&(node.into(), "*".into()))
                {
                    return Err(format!("refused `iptables {line}`").into());
                }
                Ok(String::new())
            })
        }
    }

    fn link(from: &str, to: &str) -> Link {
        Link {
            from: from.into(),
            to: to.into(),
        }
    }

    /// n1, n2, n3 at 10.0.0.1, .2, .3, with a fake firewall.
    fn three_nodes() -> (Arc<FakeFirewall>, HostRules) {
        let firewall = Arc::new(FakeFirewall::default());
        let addrs = (1..=3)
            .map(|i| (format!("n{i}"), Ipv4Addr::new(10, 0, 0, i)))
            .collect();
        let rules = HostRules::new(firewall.clone(), addrs);
        (firewall, rules)
    }

    /// The commands that make the chain on `node`'s host and hook it.
    fn install(node: &str, chain: &str) -> [String; 2] {
        [
            format!("{node}: -N {chain}"),
            format!("{node}: -I INPUT -j {chain}"),
        ]
    }

    #[test]
    fn the_chain_is_named_like_every_faultline_chain_and_owned_by_this_process() {
        let (_, rules) = three_nodes();
        let (_, other) = three_nodes();
        assert!(rules.chain().starts_with(CHAIN_PREFIX), "{}", rules.chain());
        assert_eq!(owner(rules.chain(), CHAIN_PREFIX), Some(std::process::id()));
        assert_ne!(rules.chain(), other.chain());
    }

    #[tokio::test]
    async fn the_first_cut_at_a_receiver_creates_and_hooks_its_chain_then_one_rule_per_receiver() {
        let (firewall, rules) = three_nodes();
        let c = rules.chain().to_owned();
        rules.heal().await.unwrap();
        assert_eq!(
            firewall.take(),
            Vec::<String>::new(),
            "healed before any cut"
        );

        let links = [
            link("n2", "n3"),
            link("n1", "n3"),
            link("n1", "n2"),
            link("n1", "n3"),
            link("n3", "n3"),
        ];
        rules.cut(&links).await.unwrap();
        let mut expected = install("n2", &c).to_vec();
        expected.push(format!("n2: -A {c} -s 10.0.0.1 -j DROP"));
        expected.extend(install("n3", &c));
        expected.push(format!("n3: -A {c} -s 10.0.0.1,10.0.0.2 -j DROP"));
        assert_eq!(firewall.take(), expected);

        // The chains exist now: a further cut only adds rules.
        rules.cut(&[link("n3", "n2")]).await.unwrap();
        assert_eq!(firewall.take(), [format!("n2: -A {c} -s 10.0.0.3 -j DROP")]);
        // A link from a node to itself is nothing to cut.
        rules.cut(&[link("n1", "n1")]).await.unwrap();
        assert_eq!(firewall.take(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn heal_flushes_the_chains_and_teardown_unhooks_and_deletes_them_once() {
        let (firewall, rules) = three_nodes();
        let c = rules.chain().to_owned();
        rules
            .cut(&[link("n1", "n2"), link("n1", "n3")])
            .await
            .unwrap();
        firewall.take();

        rules.heal().await.unwrap();
        assert_eq!(
            firewall.take(),
            [format!("n2: -F {c}"), format!("n3: -F {c}")]
        );

        rules.teardown().await.unwrap();
        let removal = |node: &str| {
            [
                format!("{node}: -D INPUT -j {c}"),
                format!("{node}: -F {c}"),
                format!("{node}: -X {c}"),
            ]
        };
        assert_eq!(firewall.take(), [removal("n2"), removal("n3")].concat());
        rules.teardown().await.unwrap();
        rules.heal().await.unwrap();
        assert_eq!(firewall.take(), Vec::<String>::new());
        let error = rules.cut(&[link("n1", "n2")]).await.unwrap_err();
        assert_eq!(error.to_string(), "cannot cut links");
        assert_eq!(firewall.take(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_link_naming_an_unknown_node_adds_no_rule_at_all() {
        let (firewall, rules) = three_nodes();
        for links in [
            vec![link("n1", "n2"), link("n4", "n2")],
            vec![link("n1", "n2"), link("n1", "n4")],
        ] {
            let error = rules.cut(&links).await.unwrap_err();
            assert!(
                matches!(error, PartitionError::UnknownNode(ref node) if node == "n4"),
                "{error:?}"
            );
        }
        assert_eq!(firewall.take(), Vec::<String>::new());
        // Nothing was installed, so there is nothing to remove.
        rules.teardown().await.unwrap();
        assert_eq!(firewall.take(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_failing_host_is_named_and_the_others_are_still_healed_and_torn_down() {
        let (firewall, rules) = three_nodes();
        let c = rules.chain().to_owned();
        firewall.fail("n2", "-A");
        let error = rules.cut(&[link("n1", "n2")]).await.unwrap_err();
        assert_eq!(error.to_string(), "could not cut n1 -> n2");
        let reason = Error::source(&error).unwrap().to_string();
        assert_eq!(
            reason,
            format!("refused `iptables -A {c} -s 10.0.0.1 -j DROP`")
        );
        firewall.recover();
        rules
            .cut(&[link("n1", "n2"), link("n1", "n3")])
            .await
            .unwrap();
        firewall.take();

        firewall.fail("n2", "*");
        let error = rules.heal().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("could not flush chain {c} at n2")
        );
        assert_eq!(
            firewall.take(),
            [format!("n2: -F {c}"), format!("n3: -F {c}")]
        );

        let error = rules.teardown().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("could not remove chain {c} at n2")
        );
        assert_eq!(firewall.take().len(), 6, "each step tried on each host");
        // Retried, the teardown only redoes what is left: n2's chain.
        firewall.recover();
        rules.teardown().await.unwrap();
        assert_eq!(
            firewall.take(),
            [
                format!("n2: -D INPUT -j {c}"),
                format!("n2: -F {c}"),
                format!("n2: -X {c}"),
            ]
        );
    }

    #[tokio::test]
    async fn a_chain_that_could_not_be_hooked_is_deleted_or_hooked_at_the_next_cut() {
        let (firewall, rules) = three_nodes();
        let c = rules.chain().to_owned();
        firewall.fail("n2", "-I");
        let error = rules.cut(&[link("n1", "n2")]).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("could not hook chain {c} into INPUT at n2")
        );
        let mut expected = install("n2", &c).to_vec();
        expected.push(format!("n2: -X {c}"));
        assert_eq!(firewall.take(), expected);
        rules.teardown().await.unwrap();
        assert_eq!(
            firewall.take(),
            Vec::<String>::new(),
            "the chain was deleted"
        );

        // Where deleting it fails too, the next cut hooks the chain it left.
        let (firewall, rules) = three_nodes();
        let c = rules.chain().to_owned();
        firewall.fail("n2", "-I");
        firewall.fail("n2", "-X");
        rules.cut(&[link("n1", "n2")]).await.unwrap_err();
        firewall.take();
        firewall.recover();
        rules.cut(&[link("n1", "n2")]).await.unwrap();
        assert_eq!(
            firewall.take(),
            [
                format!("n2: -I INPUT -j {c}"),
                format!("n2: -A {c} -s 10.0.0.1 -j DROP"),
            ]
        );
    }

    #[tokio::test]
    async fn a_chain_that_could_not_be_created_is_not_removed_at_teardown() {
        let (firewall, rules) = three_nodes();
        let c = rules.chain().to_owned();
        firewall.fail("n3", "-N");
        let error = rules.cut(&[link("n1", "n3")]).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("could not create chain {c} at n3")
        );
        firewall.take();
        rules.teardown().await.unwrap();
        assert_eq!(firewall.take(), Vec::<String>::new());
    }
}
