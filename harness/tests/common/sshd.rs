//! Remote hosts on one machine, for the SSH tests: a network namespace per host (the ones
//! `--netns` uses, `faultline_nemesis::NodeNetwork`), Debian's sshd listening in each on the
//! host's own address, port 22, and a throwaway key pair made for the test. The harness is
//! pointed at an ssh configuration file of the fixture's (`--ssh-config`) and drives the
//! hosts exactly as it would drive remote machines.
//!
//! Everything lives in a temporary directory: keys, known hosts, each sshd's configuration,
//! pid file and log. Dropping the fixture (at the end, or when a test panics) stops every
//! sshd by its pid and removes the namespaces.
//!
//! Used by `harness/tests/ssh.rs` and by the harness's own tests of `src/remote/`, which
//! include this file by path.

#![allow(dead_code, reason = "each user of the fixture uses part of it")]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faultline_nemesis::NodeNetwork;
use tempfile::TempDir;

/// Where Debian's openssh-server puts sshd.
pub const SSHD: &str = "/usr/sbin/sshd";

/// How long an sshd may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why SSH hosts cannot be made here, if they cannot: the tests that need them are skipped,
/// saying so.
pub fn sshd_missing() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("SSH hosts in network namespaces need root".to_string());
    }
    if !Path::new(SSHD).is_file() {
        return Some(format!("{SSHD} is missing: apt-get install openssh-server"));
    }
    for (program, flag, package) in [
        ("ssh", "-V", "openssh-client"),
        ("ssh-keygen", "-?", "openssh-client"),
        ("ip", "-V", "iproute2"),
    ] {
        if Command::new(program)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Some(format!("`{program}` is missing: apt-get install {package}"));
        }
    }
    None
}

/// Whether the test must be skipped for want of SSH hosts; says why if so.
pub fn skipped() -> bool {
    match sshd_missing() {
        Some(reason) => {
            eprintln!("skipped: {reason}");
            true
        }
        None => false,
    }
}

/// Hosts `n1`..`nN`, each a namespace; those asked for with an sshd in it.
pub struct SshHosts {
    network: NodeNetwork,
    dir: TempDir,
    /// The running sshds, by host name.
    sshds: Vec<(String, tokio::process::Child)>,
}

impl SshHosts {
    /// `count` hosts; sshd runs on those `with_sshd` says (by 0-based index; all when it is
    /// shorter). Panics, with the reason, if something cannot be made.
    pub async fn start(count: usize, with_sshd: &[bool]) -> SshHosts {
        let names: Vec<String> = (1..=count).map(|i| format!("n{i}")).collect();
        let network = NodeNetwork::create(&names)
            .await
            .expect("creating the hosts' network namespaces");
        let dir = tempfile::Builder::new()
            .prefix("faultline-sshd-")
            .tempdir()
            .unwrap();
        let mut hosts = SshHosts {
            network,
            dir,
            sshds: Vec::new(),
        };
        hosts.keygen("host_key");
        hosts.keygen("client_key");
        hosts.keygen("stranger_key");
        let public = std::fs::read_to_string(hosts.path("client_key.pub")).unwrap();
        std::fs::write(hosts.path("authorized_keys"), public).unwrap();
        hosts.write_client_config("ssh_config", "client_key");
        hosts.write_client_config("stranger_ssh_config", "stranger_key");
        // sshd's privilege separation directory, which the package's service makes at boot.
        std::fs::create_dir_all("/run/sshd").unwrap();
        for (i, name) in names.iter().enumerate() {
            if with_sshd.get(i).copied().unwrap_or(true) {
                hosts.start_sshd(name).await;
            }
        }
        hosts
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The fixture's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A throwaway ed25519 key pair, `name` and `name.pub`, without a passphrase.
    fn keygen(&self, name: &str) {
        let status = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "faultline-test",
                "-f",
            ])
            .arg(self.path(name))
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "ssh-keygen {name}: {status}");
    }

    /// An ssh configuration that logs in with `key` and keeps known hosts in the fixture.
    fn write_client_config(&self, name: &str, key: &str) {
        let config = format!(
            "Host *\n\
             \x20 IdentityFile {key}\n\
             \x20 IdentitiesOnly yes\n\
             \x20 IdentityAgent none\n\
             \x20 UserKnownHostsFile {known}\n\
             \x20 GlobalKnownHostsFile /dev/null\n\
             \x20 StrictHostKeyChecking accept-new\n\
             \x20 LogLevel ERROR\n",
            key = self.path(key).display(),
            known = self.path("known_hosts").display(),
        );
        std::fs::write(self.path(name), config).unwrap();
    }

    /// Starts sshd in `name`'s namespace, on its address, port 22, and waits until it listens.
    async fn start_sshd(&mut self, name: &str) {
        let ip = self.ip(name);
        let config_path = self.path(&format!("sshd_config-{name}"));
        let mut config = String::new();
        for line in [
            format!("ListenAddress {ip}:22"),
            format!("HostKey {}", self.path("host_key").display()),
            format!(
                "AuthorizedKeysFile {}",
                self.path("authorized_keys").display()
            ),
            "PermitRootLogin prohibit-password".to_string(),
            "PasswordAuthentication no".to_string(),
            "KbdInteractiveAuthentication no".to_string(),
            "StrictModes no".to_string(),
            "UsePAM no".to_string(),
            format!(
                "PidFile {}",
                self.path(&format!("sshd-{name}.pid")).display()
            ),
            // The tests open a few sessions at once per host.
            "MaxSessions 50".to_string(),
            "MaxStartups 50".to_string(),
        ] {
            writeln!(config, "{line}").unwrap();
        }
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(self.path(&format!("sshd-{name}.log"))).unwrap();
        let mut command = self.network.command(name, SSHD).unwrap();
        command
            .args(["-D", "-e", "-f"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().expect("starting sshd");
        self.sshds.push((name.to_string(), child));
        let addr = SocketAddr::from((ip, 22));
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd of {name} does not listen on {addr} after {LISTEN_TIMEOUT:?}: {}",
                self.sshd_log(name)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What `name`'s sshd logged.
    pub fn sshd_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("sshd-{name}.log"))).unwrap_or_default()
    }

    /// The host's address.
    pub fn ip(&self, name: &str) -> Ipv4Addr {
        self.network.addr(name).expect("a host of the fixture")
    }

    /// An address on the hosts' subnet that no host has: nothing answers there.
    pub fn unused_ip(&self) -> Ipv4Addr {
        let [a, b, c, _] = self.network.host_addr().octets();
        Ipv4Addr::new(a, b, c, 250)
    }

    /// `root@<address>` of the host.
    pub fn host(&self, name: &str) -> String {
        format!("root@{}", self.ip(name))
    }

    /// The ssh configuration that logs in with the authorized key.
    pub fn ssh_config(&self) -> PathBuf {
        self.path("ssh_config")
    }

    /// An ssh configuration that logs in with a key no host knows.
    pub fn stranger_ssh_config(&self) -> PathBuf {
        self.path("stranger_ssh_config")
    }

    /// The network the hosts live in.
    pub fn network(&self) -> &NodeNetwork {
        &self.network
    }

    /// Kills every sshd and the connections it serves (each in a session of its own, so
    /// found as the sshd's descendants), by pid.
    fn kill_sshds(&mut self) {
        for (_, child) in &mut self.sshds {
            kill_with_descendants(child);
        }
    }

    /// Kills `name`'s sshd and every connection it serves, as if the host went away.
    pub async fn kill_sshd(&mut self, name: &str) {
        let at = self.sshds.iter().position(|(host, _)| host == name);
        let (_, mut child) = self.sshds.remove(at.expect("a host with an sshd"));
        kill_with_descendants(&mut child);
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }

    /// Takes `name` off the network: everything that reaches its namespace is dropped, as
    /// when a machine's link goes down. Unlike killing its sshd, nothing that runs there is
    /// cut short (a shell killed halfway through its start-up files can leave their locks
    /// behind). The rule dies with the namespace.
    pub fn cut_off(&self, name: &str) {
        let namespace = self.network.namespace(name).expect("a host of the fixture");
        let status = Command::new("ip")
            .args([
                "netns", "exec", namespace, "iptables", "-w", "-I", "INPUT", "1", "-j", "DROP",
            ])
            .status()
            .expect("running iptables in the host's namespace");
        assert!(status.success(), "cutting {name} off failed");
    }

    /// Stops every sshd and removes the namespaces.
    pub async fn stop(mut self) {
        self.kill_sshds();
        for (_, child) in &mut self.sshds {
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
        self.sshds.clear();
        self.network
            .teardown()
            .await
            .expect("removing the hosts' namespaces");
    }
}

impl Drop for SshHosts {
    /// A panicking test still stops its sshds (by pid); the network removes its namespaces
    /// in its own `Drop`.
    fn drop(&mut self) {
        self.kill_sshds();
    }
}

/// SIGKILLs `child` and every process below it.
fn kill_with_descendants(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        for descendant in descendants(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(descendant as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _ = child.start_kill();
}

/// Every process below `pid` (children, their children, ...), from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        if let Some(Ok(parent)) = after.split_whitespace().nth(1).map(str::parse::<u32>) {
            parents.push((child, parent));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}
