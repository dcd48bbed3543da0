//! The control channel against real sshds, one in each of a few network namespaces on this
//! machine (`harness/tests/common/sshd.rs`): every action of `host.rs` on a live host, and
//! each way of failing to connect classified as it should be, within its time limit.
//! Root only, with openssh-server installed; skipped otherwise, saying why.

#[path = "../../tests/common/sshd.rs"]
mod sshd;

use std::time::{Duration, Instant};

use super::host::{HostNeeds, RemoteHost, RemoteProgram, RemoteSignal};
use super::ssh::{SshError, SshOptions, SshSession};
use crate::host_addr::HostAddr;
use crate::system::HostProgram;
use sshd::{SshHosts, skipped};

fn options(hosts: &SshHosts) -> SshOptions {
    SshOptions {
        config_file: Some(hosts.ssh_config()),
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(10),
    }
}

async fn connect(hosts: &SshHosts, name: &str) -> RemoteHost {
    let addr = HostAddr::parse(&hosts.host(name)).unwrap();
    let session = SshSession::connect(&addr, &options(hosts)).await.unwrap();
    let needs = HostNeeds {
        iptables: false,
        program: HostProgram::Copied,
    };
    let (host, facts) = RemoteHost::check(session, &needs).await.unwrap();
    assert!(facts.root, "{facts:?}");
    host
}

/// Whether `pid`'s process is stopped (SIGSTOP), from its /proc status.
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("State:") && line.contains("T ("))
}

#[tokio::test]
async fn a_program_is_put_started_paused_killed_and_collected_over_ssh() {
    if skipped() {
        return;
    }
    let hosts = SshHosts::start(2, &[]).await;
    let host = connect(&hosts, "n1").await;

    // The hosts share this machine's disk: the "remote" side lives in the fixture's dir.
    let local = hosts.dir().join("program.sh");
    std::fs::write(&local, "#!/bin/sh\necho \"started $1\"\nexec sleep 600\n").unwrap();
    let root = hosts.dir().join("remote").display().to_string();
    let program = format!("{root}/bin/program");
    host.put_file(&local, &program).await.unwrap();
    let copied = std::fs::metadata(&program).unwrap();
    assert_eq!(copied.len(), std::fs::metadata(&local).unwrap().len());

    let dir = format!("{root}/n1");
    let launch = RemoteProgram {
        program: program.clone(),
        args: vec!["with a space and 'quotes'".to_string()],
        dir: dir.clone(),
        log: format!("{dir}/node.log"),
    };
    let before = std::time::SystemTime::now();
    let started = host.start(&launch).await.unwrap();
    let pid = started.pid;
    // When it started, by the host's clock (this machine's here).
    let since = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128
    };
    let at = started.at_ns.expect("the host's start time");
    assert!(
        since(before) <= at && at <= since(std::time::SystemTime::now()),
        "{started:?}"
    );
    assert!(host.alive(&dir).await.unwrap());
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/pid"))
            .unwrap()
            .trim(),
        pid.to_string()
    );
    // Detached: the program outlives the command that started it, in the session of the
    // shell that waits for it (its parent), not in the session of the ssh command.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let (parent, session_id) = (fields[1], fields[3]);
    assert_eq!(session_id, parent, "{stat}");
    assert_eq!(host.exit_status(&dir, pid).await.unwrap(), None, "it runs");

    assert!(host.signal(&dir, RemoteSignal::Stop).await.unwrap());
    assert!(stopped(pid), "SIGSTOP over ssh did not stop {pid}");
    assert!(host.alive(&dir).await.unwrap(), "a paused program is alive");
    assert!(host.signal(&dir, RemoteSignal::Cont).await.unwrap());
    assert!(!stopped(pid));
    assert!(host.signal(&dir, RemoteSignal::Kill).await.unwrap());
    assert!(!host.alive(&dir).await.unwrap());
    // The kill returned once the shell that waited for it said how it ended: 128 + SIGKILL's 9.
    assert_eq!(host.exit_status(&dir, pid).await.unwrap(), Some(137));
    // Nothing to do for a dead program, and its pid (maybe reused) is left alone.
    assert!(!host.signal(&dir, RemoteSignal::Kill).await.unwrap());

    // Started again, it appends to its log.
    host.start(&launch).await.unwrap();
    let into = hosts.dir().join("collected");
    // Both lines may take a moment to be written.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("{dir}/node.log"))
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the program did not log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.copy_dir_back(&dir, &into).await.unwrap();
    let log = std::fs::read_to_string(into.join("node.log")).unwrap();
    assert_eq!(
        log,
        "started with a space and 'quotes'\nstarted with a space and 'quotes'\n"
    );
    assert!(into.join("pid").is_file());

    // Clean-up kills whatever still runs under the run's directory, and only that.
    let other = RemoteProgram {
        dir: format!("{root}/n2"),
        log: format!("{root}/n2/node.log"),
        ..launch.clone()
    };
    host.start(&other).await.unwrap();
    // SIGTERM asks; the program (sleep) goes, in its own time.
    assert!(host.signal(&other.dir, RemoteSignal::Term).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while host.alive(&other.dir).await.unwrap() {
        assert!(Instant::now() < deadline, "SIGTERM did not end the program");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.start(&other).await.unwrap();
    // A node that starts a process of its own (a script that starts the server): that goes
    // too.
    let forking = hosts.dir().join("forking.sh");
    std::fs::write(
        &forking,
        "#!/bin/sh
sleep 600 &
echo $! > child
exec sleep 600
",
    )
    .unwrap();
    let forking_program = format!("{root}/bin/forking");
    host.put_file(&forking, &forking_program).await.unwrap();
    let third = RemoteProgram {
        program: forking_program,
        args: Vec::new(),
        dir: format!("{root}/n3"),
        log: format!("{root}/n3/node.log"),
    };
    host.start(&third).await.unwrap();
    let child_file = format!("{}/child", third.dir);
    let deadline = Instant::now() + Duration::from_secs(5);
    let child: u32 = loop {
        if let Ok(pid) = std::fs::read_to_string(&child_file)
            .unwrap_or_default()
            .trim()
            .parse()
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the forking program wrote no child"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(std::path::Path::new(&format!("/proc/{child}")).exists());
    assert_eq!(host.kill_all_under(&root).await.unwrap(), 3);
    assert!(!host.alive(&dir).await.unwrap());
    assert!(!host.alive(&other.dir).await.unwrap());
    // Gone once reaped (its parent died with it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{child}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the node's own child outlived it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(host.kill_all_under(&root).await.unwrap(), 0);
    host.remove_dir(&root).await.unwrap();
    assert!(!std::path::Path::new(&root).exists());

    host.close().await.unwrap();
    hosts.stop().await;
}

#[tokio::test]
async fn the_clock_offset_of_a_host_on_the_same_clock_is_within_half_a_round_trip() {
    if skipped() {
        return;
    }
    let hosts = SshHosts::start(1, &[]).await;
    let host = connect(&hosts, "n1").await;
    let clock = host.clock_offset().await.unwrap();
    // One clock: the host read it between asking and the answer, so the midpoint misses by
    // at most half the round trip (and date's own rounding, well under a millisecond).
    assert!(
        clock.offset_ms.abs() <= clock.round_trip_ms / 2.0 + 1.0,
        "{clock:?}"
    );
    host.close().await.unwrap();
    hosts.stop().await;
}

#[tokio::test]
async fn a_command_over_its_time_limit_is_abandoned_and_named() {
    if skipped() {
        return;
    }
    let hosts = SshHosts::start(1, &[]).await;
    let host = connect(&hosts, "n1").await;
    let started = Instant::now();
    let error = host
        .session()
        .run_within("sleeping", "sleep 30", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(error, SshError::TimedOut { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&hosts.host("n1")), "{text}");
    assert!(
        text.contains("sleeping did not finish within 0.3 s"),
        "{text}"
    );
    // The connection still serves the next command.
    let answer = host.session().run_ok("echo", "echo fine").await.unwrap();
    assert_eq!(answer, "fine\n");
    let failed = host
        .session()
        .run_ok("failing", "echo why >&2; exit 4")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        failed.ends_with("failing failed (exit status: 4): why"),
        "{failed}"
    );
    host.close().await.unwrap();
    hosts.stop().await;
}

#[tokio::test]
async fn unreachable_hosts_and_refused_logins_are_told_apart_within_the_timeout() {
    if skipped() {
        return;
    }
    // n2 has no sshd: its kernel refuses at once.
    let hosts = SshHosts::start(2, &[true, false]).await;
    let options = options(&hosts);
    let connect = |host: String, options: SshOptions| async move {
        let addr = HostAddr::parse(&host).unwrap();
        let started = Instant::now();
        let result = SshSession::connect(&addr, &options).await;
        (result.err().expect("no connection"), started.elapsed())
    };

    let (refused, took) = connect(hosts.host("n2"), options.clone()).await;
    assert!(
        matches!(refused, SshError::Unreachable { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("Connection refused"),
        "{refused}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Nobody has this address: no answer at all, until the connect timeout (2 s).
    let nobody = format!("root@{}", hosts.unused_ip());
    let (silent, took) = connect(nobody.clone(), options.clone()).await;
    assert!(matches!(silent, SshError::Unreachable { .. }), "{silent:?}");
    assert!(silent.to_string().starts_with(&nobody), "{silent}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    let stranger = SshOptions {
        config_file: Some(hosts.stranger_ssh_config()),
        ..options.clone()
    };
    let (denied, _) = connect(hosts.host("n1"), stranger).await;
    assert!(matches!(denied, SshError::AuthFailed { .. }), "{denied:?}");
    assert!(denied.to_string().contains("Permission denied"), "{denied}");
    hosts.stop().await;
}

#[tokio::test]
async fn a_host_lost_mid_run_fails_its_next_command_at_once_naming_it() {
    if skipped() {
        return;
    }
    let mut hosts = SshHosts::start(1, &[]).await;
    let host = connect(&hosts, "n1").await;
    // The host goes away: its sshd and the connection it served die.
    hosts.kill_sshd("n1").await;
    let started = Instant::now();
    let error = host
        .session()
        .run_ok("a command after the loss", "true")
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, SshError::Lost { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "the SSH connection to {} was lost during a command after the loss",
            hosts.host("n1")
        )),
        "{text}"
    );
    drop(host);
    hosts.stop().await;
}
