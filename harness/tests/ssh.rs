//! End-to-end: the harness drives hosts over SSH, here sshds in network namespaces on this
//! machine (`common/sshd.rs`), as it would drive remote machines. `faultline hosts` finds
//! ready hosts ready and measures their clocks; an unreachable host, and a host that refuses
//! the login, are exit 3 naming the host and what to fix, within the connect timeout.
//!
//! Root only, with openssh-server installed (`.ci/run` installs it); skipped otherwise,
//! saying why. Checks of the command line itself run everywhere.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{describe, faultline};
use sshd::{SshHosts, skipped};

/// `faultline hosts ARGS...`, to the end.
fn hosts_command(args: &[&str]) -> Output {
    Command::new(faultline())
        .arg("hosts")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn ready_hosts_are_named_with_their_clocks_offset() {
    if skipped() {
        return;
    }
    if !Path::new("/usr/sbin/iptables").exists() && !Path::new("/sbin/iptables").exists() {
        eprintln!("skipped: the hosts need iptables (apt-get install iptables)");
        return;
    }
    let hosts = SshHosts::start(2, &[]).await;
    let config = hosts.ssh_config();
    let list = format!("{},{}", hosts.host("n1"), hosts.host("n2"));
    let output = hosts_command(&["--hosts", &list, "--ssh-config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for name in ["n1", "n2"] {
        let line = stdout
            .lines()
            .find(|line| {
                line.starts_with(&format!(
                    "{}: ready (root, iptables, clock ",
                    hosts.host(name)
                ))
            })
            .unwrap_or_else(|| panic!("no ready line for {name}: {}", describe(&output)));
        assert!(
            line.contains(" ms from this machine's (round trip "),
            "{line}"
        );
    }
    hosts.stop().await;
}

#[tokio::test]
async fn unreachable_hosts_are_exit_3_naming_each_within_the_connect_timeout() {
    if skipped() {
        return;
    }
    // n2 runs no sshd (refused at once); nobody has the unused address (no answer at all).
    let hosts = SshHosts::start(2, &[true, false]).await;
    let config = hosts.ssh_config();
    let silent = format!("root@{}", hosts.unused_ip());
    let list = format!("{},{},{silent}", hosts.host("n1"), hosts.host("n2"));
    let started = Instant::now();
    let output = hosts_command(&[
        "--hosts",
        &list,
        "--ssh-config",
        config.to_str().unwrap(),
        "--connect-timeout",
        "2s",
    ]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    // Hosts are checked at once: the silent one's timeout bounds the whole command.
    assert!(
        took < Duration::from_secs(12),
        "took {took:?}; {}",
        describe(&output)
    );
    let stderr = text(&output.stderr);
    for host in [hosts.host("n2"), silent.clone()] {
        assert!(
            stderr.contains(&format!(
                "{host}: not ready: {host} is unreachable over SSH"
            )),
            "{host}: {}",
            describe(&output)
        );
    }
    assert!(stderr.contains("sshd listens"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: 2 of 3 hosts not ready: {}, {silent}",
            hosts.host("n2")
        )),
        "{stderr}"
    );
    assert!(
        text(&output.stdout).contains(&format!("{}: ready", hosts.host("n1"))),
        "{}",
        describe(&output)
    );
    hosts.stop().await;
}

#[tokio::test]
async fn a_refused_login_is_exit_3_saying_what_to_do_about_the_key() {
    if skipped() {
        return;
    }
    let hosts = SshHosts::start(1, &[]).await;
    let config = hosts.stranger_ssh_config();
    let host = hosts.host("n1");
    let output = hosts_command(&["--hosts", &host, "--ssh-config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{host}: not ready: {host} refused the SSH login")),
        "{stderr}"
    );
    assert!(stderr.contains("Permission denied (publickey)"), "{stderr}");
    assert!(stderr.contains("authorized_keys"), "{stderr}");
    hosts.stop().await;
}

#[test]
fn a_host_that_accepts_connections_but_never_speaks_ssh_is_unreachable_within_the_timeout() {
    if std::process::Command::new("ssh")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: no ssh client (apt-get install openssh-client)");
        return;
    }
    // The kernel completes the connections; nothing ever answers on them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("root@{}", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host *\n  UserKnownHostsFile {}\n  IdentityAgent none\n",
            dir.path().join("known_hosts").display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let output = hosts_command(&[
        "--hosts",
        &host,
        "--ssh-config",
        config.to_str().unwrap(),
        "--connect-timeout",
        "1s",
    ]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{host}: not ready: {host} is unreachable over SSH"
        )),
        "{}",
        describe(&output)
    );
}

#[test]
fn a_malformed_host_list_or_a_missing_ssh_config_is_exit_3_before_connecting() {
    let output = hosts_command(&["--hosts", "root@h1,,root@h2"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("an empty entry"),
        "{}",
        describe(&output)
    );

    let output = hosts_command(&["--hosts", "root@h1,root@h1"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("h1 is named twice"),
        "{}",
        describe(&output)
    );

    let output = hosts_command(&["--hosts", "root@h1", "--ssh-config", "/nonexistent/config"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        text(&output.stderr)
            .contains("the ssh configuration /nonexistent/config (--ssh-config) does not exist"),
        "{}",
        describe(&output)
    );
}
