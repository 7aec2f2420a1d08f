//! Where audit records go: a syslog receiver named as `tcp://host:port` or `udp://host:port`.
//! Parsing is strict (no path, user info or default port) so that a typo in the configuration
//! fails at start-up instead of silently sending the audit trail nowhere. The canonical form
//! (lower-case, IPv6 in brackets) also names the forwarder's cursor in the store, so the same
//! receiver spelled the same way resumes where it stopped.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use crate::SyslogError;

/// The transport to the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RFC 6587 octet-counted frames on one long-lived connection.
    Tcp,
    /// RFC 5426: one message per datagram, no delivery guarantee.
    Udp,
}

impl Protocol {
    fn scheme(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A parsed syslog receiver address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    protocol: Protocol,
    /// A DNS name or IP address, lower-case, without IPv6 brackets.
    host: String,
    port: u16,
}

impl Target {
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The store meta key holding the last sequence number delivered to this target.
    pub fn cursor_key(&self) -> String {
        format!("syslog.cursor.{self}")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.protocol.scheme();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Target {
    type Err = SyslogError;

    fn from_str(input: &str) -> Result<Target, SyslogError> {
        let invalid = |reason: &'static str| SyslogError::InvalidTarget {
            input: input.to_owned(),
            reason,
        };
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| invalid("expected tcp://host:port or udp://host:port"))?;
        let protocol = if scheme.eq_ignore_ascii_case("tcp") {
            Protocol::Tcp
        } else if scheme.eq_ignore_ascii_case("udp") {
            Protocol::Udp
        } else {
            return Err(SyslogError::UnsupportedScheme {
                input: input.to_owned(),
            });
        };
        if rest
            .chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace())
        {
            return Err(invalid("only host:port may follow the scheme"));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (addr, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("unclosed '[' in IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| invalid("missing port"))?;
            let addr: Ipv6Addr = addr
                .parse()
                .map_err(|_| invalid("not an IPv6 address in brackets"))?;
            (addr.to_string(), port)
        } else {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| invalid("missing port"))?;
            if host.contains(':') {
                return Err(invalid("an IPv6 address must be written in brackets"));
            }
            (host.to_ascii_lowercase(), port)
        };
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        if host.len() > 253
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return Err(invalid("host is not a DNS name or IP address"));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(invalid("port must be a number from 1 to 65535")),
        };
        Ok(Target {
            protocol,
            host,
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Target {
        s.parse().unwrap()
    }

    fn reason(s: &str) -> &'static str {
        match s.parse::<Target>() {
            Err(SyslogError::InvalidTarget { reason, input }) => {
                assert_eq!(input, s);
                reason
            }
            other => panic!("{s}: expected InvalidTarget, got {other:?}"),
        }
    }

    #[test]
    fn parses_good_targets() {
        let t = parse("tcp://127.0.0.1:514");
        assert_eq!(
            (t.protocol(), t.host(), t.port()),
            (Protocol::Tcp, "127.0.0.1", 514)
        );
        assert_eq!(t.to_string(), "tcp://127.0.0.1:514");
        assert_eq!(t.cursor_key(), "syslog.cursor.tcp://127.0.0.1:514");

        let t = parse("UDP://SIEM-1.Example.com:6514");
        assert_eq!(
            (t.protocol(), t.host(), t.port()),
            (Protocol::Udp, "siem-1.example.com", 6514)
        );
        assert_eq!(t.to_string(), "udp://siem-1.example.com:6514");

        let t = parse("tcp://[::1]:1");
        assert_eq!((t.host(), t.port()), ("::1", 1));
        assert_eq!(t.to_string(), "tcp://[::1]:1");
        assert_eq!(
            parse("tcp://[0:0::1]:65535").to_string(),
            "tcp://[::1]:65535"
        );
        assert_eq!(parse(&t.to_string()), t);
    }

    #[test]
    fn rejects_other_schemes() {
        for s in [
            "tls://siem:6514",
            "http://siem:80",
            "syslog://siem:514",
            "://siem:1",
        ] {
            assert!(
                matches!(
                    s.parse::<Target>(),
                    Err(SyslogError::UnsupportedScheme { .. })
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_malformed_targets() {
        let scheme = "expected tcp://host:port or udp://host:port";
        assert_eq!(reason(""), scheme);
        assert_eq!(reason("siem:514"), scheme);
        assert_eq!(reason("tcp:siem:514"), scheme);
        assert_eq!(reason("tcp://siem"), "missing port");
        assert_eq!(
            reason("tcp://siem:"),
            "port must be a number from 1 to 65535"
        );
        assert_eq!(
            reason("tcp://siem:0"),
            "port must be a number from 1 to 65535"
        );
        assert_eq!(
            reason("tcp://siem:65536"),
            "port must be a number from 1 to 65535"
        );
        assert_eq!(
            reason("tcp://siem:+514"),
            "port must be a number from 1 to 65535"
        );
        assert_eq!(
            reason("tcp://siem:5x"),
            "port must be a number from 1 to 65535"
        );
        assert_eq!(reason("tcp://:514"), "missing host");
        let only = "only host:port may follow the scheme";
        assert_eq!(reason("tcp://siem:514/"), only);
        assert_eq!(reason("tcp://user@siem:514"), only);
        assert_eq!(reason("tcp://si em:514"), only);
        assert_eq!(reason("tcp://siem:514?x=1"), only);
        assert_eq!(
            reason("tcp://::1:514"),
            "an IPv6 address must be written in brackets"
        );
        assert_eq!(reason("tcp://[::1:514"), "unclosed '[' in IPv6 address");
        assert_eq!(reason("tcp://[::1]"), "missing port");
        assert_eq!(reason("tcp://[zz]:514"), "not an IPv6 address in brackets");
        assert_eq!(
            reason("tcp://sí.example:514"),
            "host is not a DNS name or IP address"
        );
        assert_eq!(
            reason(&format!("tcp://{}:514", "a".repeat(254))),
            "host is not a DNS name or IP address"
        );
    }

    #[test]
    fn errors_read_well() {
        let e = "tls://siem:6514".parse::<Target>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported syslog target \"tls://siem:6514\": expected tcp://host:port or udp://host:port"
        );
        let e = "tcp://siem".parse::<Target>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid syslog target \"tcp://siem\": missing port"
        );
    }
}
