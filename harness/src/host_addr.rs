//! A host as `--hosts` (or a system file's `[hosts]`) names it: `[user@]host[:port]`, as `ssh`
//! takes a destination (a port after a colon, an IPv6 address in brackets). A host without a
//! user or a port gets what the user's ssh configuration says for it.

use std::fmt;

/// One host of `--hosts`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostAddr {
    /// The login user; `None` leaves it to the ssh configuration (or the local user's name).
    pub user: Option<String>,
    /// A name ssh resolves (a `Host` alias of the ssh configuration too), or an address.
    pub host: String,
    /// The port; `None` leaves it to the ssh configuration (22 by default).
    pub port: Option<u16>,
}

impl HostAddr {
    /// Reads `[user@]host[:port]`, or `[user@][v6-address][:port]`.
    pub fn parse(text: &str) -> Result<HostAddr, String> {
        let text = text.trim();
        let invalid = |why: &str| format!("`{text}` is not a host ([user@]host[:port]): {why}");
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, text),
        };
        if user.is_some_and(|user| user.is_empty() || user.contains(char::is_whitespace)) {
            return Err(invalid("the user before `@` is empty or has spaces"));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(invalid("`[` without `]`"));
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(invalid("only `:port` may follow `]`")),
                },
            }
        } else {
            match rest.split_once(':') {
                // More than one colon: a bare IPv6 address, without a port.
                Some((_, port)) if port.contains(':') => (rest, None),
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) || host.starts_with('-') {
            return Err(invalid("the host is empty, has spaces or starts with `-`"));
        }
        let port = match port {
            None => None,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => return Err(invalid("the port is not a number from 1 to 65535")),
            },
        };
        Ok(HostAddr {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (_, None) => f.write_str(&self.host),
        }
    }
}

/// Reads `--hosts`: hosts separated by commas, at least one, none twice (two nodes on one
/// host would share its ports, its pid files and its firewall).
pub fn parse_hosts(list: &str) -> Result<Vec<HostAddr>, String> {
    let mut hosts: Vec<HostAddr> = Vec::new();
    for part in list.split(',') {
        if part.trim().is_empty() {
            return Err(format!(
                "`{list}` is not a list of hosts: an empty entry (user@h1,user@h2,...)"
            ));
        }
        let host = HostAddr::parse(part)?;
        if hosts
            .iter()
            .any(|other| other.host == host.host && other.port == host.port)
        {
            return Err(format!(
                "{} is named twice in `{list}`: one node per host",
                host.host
            ));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(user: Option<&str>, host: &str, port: Option<u16>) -> HostAddr {
        HostAddr {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn hosts_read_as_ssh_takes_destinations_and_print_back_the_same() {
        for (text, expected) in [
            ("h1", host(None, "h1", None)),
            ("root@10.0.0.1", host(Some("root"), "10.0.0.1", None)),
            (
                "ci@db-2.example.com:2222",
                host(Some("ci"), "db-2.example.com", Some(2222)),
            ),
            ("fe80::1", host(None, "fe80::1", None)),
            (
                "admin@[fe80::1]:22",
                host(Some("admin"), "fe80::1", Some(22)),
            ),
            ("[::1]", host(None, "::1", None)),
            // ssh splits at the last `@`: a user name may hold one.
            ("a@b@h", host(Some("a@b"), "h", None)),
        ] {
            let parsed = HostAddr::parse(text).unwrap();
            assert_eq!(parsed, expected, "{text}");
            if text != "[::1]" {
                assert_eq!(parsed.to_string(), text);
            }
        }
    }

    #[test]
    fn malformed_hosts_are_refused_saying_why() {
        for (text, why) in [
            ("", "the host is empty"),
            ("root@", "the host is empty"),
            ("@h1", "the user before `@` is empty"),
            ("h1:0", "the port is not a number"),
            ("h1:99999", "the port is not a number"),
            ("h1:ssh", "the port is not a number"),
            ("[fe80::1", "`[` without `]`"),
            ("[fe80::1]x", "only `:port` may follow `]`"),
            ("-oProxyCommand=x", "starts with `-`"),
            ("my host", "has spaces"),
        ] {
            let error = HostAddr::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
            assert!(error.contains("[user@]host[:port]"), "{error}");
        }
    }

    #[test]
    fn a_list_needs_every_entry_and_each_host_once() {
        let hosts = parse_hosts("root@h1, root@h2,ci@h3:2200").unwrap();
        assert_eq!(
            hosts,
            [
                host(Some("root"), "h1", None),
                host(Some("root"), "h2", None),
                host(Some("ci"), "h3", Some(2200)),
            ]
        );
        assert!(
            parse_hosts("h1,,h2")
                .unwrap_err()
                .contains("an empty entry")
        );
        assert!(parse_hosts("").unwrap_err().contains("an empty entry"));
        let twice = parse_hosts("root@h1,ci@h1").unwrap_err();
        assert!(twice.contains("h1 is named twice"), "{twice}");
        // Two sshd on one machine, on two ports, are two hosts.
        assert_eq!(parse_hosts("h1:22,h1:2222").unwrap().len(), 2);
    }
}
