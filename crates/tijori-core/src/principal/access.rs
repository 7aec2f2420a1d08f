//! The rules a principal's keys are held to besides the key itself: an expiry, a grace period
//! for the key a rotation replaced, the networks it may call from and the client certificate it
//! must present. This module parses them (from requests and from the store) and decides one
//! request against them. A refusal names its reason for the log only: the client hears
//! `unauthenticated` whatever it is, so whoever holds a stolen key cannot learn which binding
//! stopped it, or that the key itself was right.

use std::net::IpAddr;

use ipnet::IpNet;
use subtle::ConstantTimeEq;
use tijori_store::PrincipalRecord;

use crate::{parse_rfc3339, CoreError};

/// Most networks one principal may list: the check runs on every request.
pub(crate) const MAX_CIDRS: usize = 64;
/// How long the replaced key keeps working when a rotation names no grace period: a day, time
/// for a deployment to roll out the new key.
pub(crate) const DEFAULT_GRACE: u64 = 24 * 3600;
/// The longest grace period: an old key should not linger.
pub(crate) const MAX_GRACE: u64 = 30 * 24 * 3600;

/// Where a request comes from, as far as its connection vouches for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// The connection's peer address. Behind a proxy that is the proxy's: no forwarded-for
    /// header is believed, since any client can write one.
    pub ip: Option<IpAddr>,
    /// SHA-256 of the DER encoding of the client certificate the TLS layer verified.
    pub client_cert_sha256: Option<[u8; 32]>,
}

/// A principal's rules, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rules {
    /// From this time on no key of the principal works.
    pub(crate) expires_at: Option<i64>,
    /// Empty: any source.
    pub(crate) networks: Vec<IpNet>,
    pub(crate) client_cert: Option<[u8; 32]>,
}

impl Rules {
    /// The stored rules; `Err` names what is unreadable (the principal is then refused, not
    /// let in unchecked).
    pub(crate) fn stored(rec: &PrincipalRecord) -> Result<Rules, &'static str> {
        let networks = rec
            .allowed_cidrs
            .iter()
            .map(|c| c.parse::<IpNet>())
            .collect::<Result<_, _>>()
            .map_err(|_| "an allowed network")?;
        let client_cert = rec
            .client_cert_sha256
            .as_deref()
            .map(<[u8; 32]>::try_from)
            .transpose()
            .map_err(|_| "the client certificate fingerprint")?;
        Ok(Rules {
            expires_at: rec.expires_at,
            networks,
            client_cert,
        })
    }

    /// Rules as a request gives them: an RFC 3339 expiry in the future, networks in CIDR form,
    /// a certificate fingerprint in hex. A refusal names the field, never its content.
    pub(crate) fn requested(
        expires_at: Option<&str>,
        allowed_cidrs: &[String],
        client_cert_sha256: Option<&str>,
        now: i64,
    ) -> Result<Rules, CoreError> {
        Ok(Rules {
            expires_at: expires_at.map(|t| parse_expiry(t, now)).transpose()?,
            networks: parse_networks(allowed_cidrs)?,
            client_cert: client_cert_sha256.map(parse_fingerprint).transpose()?,
        })
    }

    /// The networks as the store keeps them, in canonical CIDR form.
    pub(crate) fn cidr_texts(&self) -> Vec<String> {
        self.networks.iter().map(IpNet::to_string).collect()
    }
}

/// Which of a principal's keys a credential is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeySlot {
    Current,
    /// The key the last rotation replaced, working until `until` (exclusive).
    Previous {
        until: i64,
    },
}

/// Why a key was refused: for the log, never for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Disabled,
    Unreadable,
    Expired,
    GraceOver,
    SourceAddress,
    NoClientCertificate,
    OtherClientCertificate,
}

impl Refusal {
    pub(crate) const fn reason(self) -> &'static str {
        match self {
            Refusal::Disabled => "principal disabled",
            Refusal::Unreadable => "stored access rules unreadable",
            Refusal::Expired => "principal expired",
            Refusal::GraceOver => "replaced key past its grace period",
            Refusal::SourceAddress => "source address not allowed",
            Refusal::NoClientCertificate => "no client certificate presented",
            Refusal::OtherClientCertificate => "client certificate is not the bound one",
        }
    }
}

/// Whether the key in `slot` of a principal with `rules` may be used from `source` at `now`.
/// Times are exclusive ends: at `expires_at` itself the principal no longer works.
pub(crate) fn admit(
    rules: &Rules,
    slot: KeySlot,
    source: &Source,
    now: i64,
) -> Result<(), Refusal> {
    if rules.expires_at.is_some_and(|t| now >= t) {
        return Err(Refusal::Expired);
    }
    if let KeySlot::Previous { until } = slot {
        if now >= until {
            return Err(Refusal::GraceOver);
        }
    }
    if !rules.networks.is_empty() {
        // A dual-stack listener shows an IPv4 peer as ::ffff:a.b.c.d; it is matched as the
        // IPv4 address it is.
        let ip = source.ip.map(|ip| ip.to_canonical());
        if !ip.is_some_and(|ip| rules.networks.iter().any(|n| n.contains(&ip))) {
            return Err(Refusal::SourceAddress);
        }
    }
    if let Some(bound) = &rules.client_cert {
        let presented = source
            .client_cert_sha256
            .ok_or(Refusal::NoClientCertificate)?;
        // A fingerprint is no secret, but a comparison that stops at the first differing byte
        // would still tell a forger how close a certificate came; this one takes the same time.
        if !bool::from(bound[..].ct_eq(&presented[..])) {
            return Err(Refusal::OtherClientCertificate);
        }
    }
    Ok(())
}

/// The end of a rotation's grace period: `None` (the old key dies at once) for 0 seconds.
pub(crate) fn grace_until(grace_seconds: Option<u64>, now: i64) -> Result<Option<i64>, CoreError> {
    let grace = grace_seconds.unwrap_or(DEFAULT_GRACE);
    if grace > MAX_GRACE {
        return Err(CoreError::InvalidRequest(
            "grace_seconds must be 0 to 2592000 (30 days); 0 ends the old key at once",
        ));
    }
    // At most 30 days: the conversion cannot fail.
    let grace = i64::try_from(grace).unwrap_or(i64::MAX);
    Ok((grace > 0).then(|| now.saturating_add(grace)))
}

fn parse_expiry(text: &str, now: i64) -> Result<i64, CoreError> {
    let at = parse_rfc3339(text).ok_or(CoreError::InvalidRequest(
        "expires_at must be an RFC 3339 time, such as 2030-01-31T00:00:00Z",
    ))?;
    if at <= now {
        return Err(CoreError::InvalidRequest(
            "expires_at must be in the future; to stop a principal now, disable it",
        ));
    }
    Ok(at)
}

fn parse_networks(list: &[String]) -> Result<Vec<IpNet>, CoreError> {
    if list.len() > MAX_CIDRS {
        return Err(CoreError::InvalidRequest(
            "allowed_cidrs may list at most 64 networks",
        ));
    }
    let mut networks: Vec<IpNet> = Vec::with_capacity(list.len());
    for text in list {
        let net: IpNet = text.parse().map_err(|_| {
            CoreError::InvalidRequest(
                "each allowed_cidrs entry must be a network in CIDR form, such as 10.0.0.0/8, \
                 192.0.2.7/32 or 2001:db8::/32",
            )
        })?;
        if net.addr() != net.network() {
            return Err(CoreError::InvalidRequest(
                "an allowed_cidrs entry has host bits set: give the network's first address, \
                 such as 10.0.0.0/8 rather than 10.1.2.3/8",
            ));
        }
        if let IpNet::V6(v6) = net {
            if v6.prefix_len() >= 96 && v6.addr().to_ipv4_mapped().is_some() {
                return Err(CoreError::InvalidRequest(
                    "write IPv4 networks in IPv4 form (10.0.0.0/8), not IPv4-mapped IPv6 \
                     (::ffff:10.0.0.0/104): IPv4 peers are matched as IPv4",
                ));
            }
        }
        if !networks.contains(&net) {
            networks.push(net);
        }
    }
    Ok(networks)
}

fn parse_fingerprint(text: &str) -> Result<[u8; 32], CoreError> {
    let refuse = || {
        CoreError::InvalidRequest(
            "client_cert_sha256 must be 64 hex characters: the SHA-256 of the client \
             certificate's DER encoding (openssl x509 -in client.pem -outform DER | sha256sum)",
        )
    };
    if text.len() != 64 {
        return Err(refuse());
    }
    let bytes = hex::decode(text).map_err(|_| refuse())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| refuse())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(cidrs: &[&str]) -> Rules {
        let cidrs: Vec<String> = cidrs.iter().map(|s| (*s).to_owned()).collect();
        Rules::requested(None, &cidrs, None, 0).unwrap()
    }

    fn from(ip: &str) -> Source {
        Source {
            ip: Some(ip.parse().unwrap()),
            client_cert_sha256: None,
        }
    }

    fn message(e: CoreError) -> String {
        match e {
            CoreError::InvalidRequest(m) => m.to_owned(),
            other => panic!("not an invalid request: {other:?}"),
        }
    }

    #[test]
    fn no_rules_admit_anyone_until_told_otherwise() {
        let none = Rules::default();
        assert_eq!(
            admit(&none, KeySlot::Current, &Source::default(), 5),
            Ok(())
        );
        assert_eq!(
            admit(&none, KeySlot::Current, &from("203.0.113.9"), 5),
            Ok(())
        );
    }

    #[test]
    fn ipv4_networks() {
        let r = rules(&["10.0.0.0/8", "192.0.2.7/32"]);
        for ok in ["10.0.0.0", "10.255.255.255", "10.1.2.3", "192.0.2.7"] {
            assert_eq!(admit(&r, KeySlot::Current, &from(ok), 0), Ok(()), "{ok}");
        }
        for no in ["11.0.0.0", "9.255.255.255", "192.0.2.8", "127.0.0.1", "::1"] {
            assert_eq!(
                admit(&r, KeySlot::Current, &from(no), 0),
                Err(Refusal::SourceAddress),
                "{no}"
            );
        }
        assert_eq!(
            admit(&r, KeySlot::Current, &Source::default(), 0),
            Err(Refusal::SourceAddress),
            "an unknown source is no allowed source"
        );
    }

    #[test]
    fn ipv6_networks_and_mapped_ipv4_peers() {
        let r = rules(&["2001:db8::/32", "::1/128", "127.0.0.0/8"]);
        for ok in [
            "2001:db8::1",
            "2001:db8:ffff::",
            "::1",
            "127.0.0.1",
            "::ffff:127.0.0.9",
        ] {
            assert_eq!(admit(&r, KeySlot::Current, &from(ok), 0), Ok(()), "{ok}");
        }
        for no in [
            "2001:db9::1",
            "::2",
            "fe80::1",
            "10.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(
                admit(&r, KeySlot::Current, &from(no), 0),
                Err(Refusal::SourceAddress),
                "{no}"
            );
        }
        let all_v6 = rules(&["::/0"]);
        assert_eq!(
            admit(&all_v6, KeySlot::Current, &from("192.0.2.1"), 0),
            Err(Refusal::SourceAddress),
            "an IPv6 network does not cover IPv4 peers"
        );
    }

    #[test]
    fn expiry_is_an_exclusive_end() {
        let r = Rules {
            expires_at: Some(100),
            ..Rules::default()
        };
        let src = Source::default();
        assert_eq!(admit(&r, KeySlot::Current, &src, 99), Ok(()));
        assert_eq!(
            admit(&r, KeySlot::Current, &src, 100),
            Err(Refusal::Expired)
        );
        assert_eq!(
            admit(&r, KeySlot::Current, &src, 101),
            Err(Refusal::Expired)
        );
        assert_eq!(
            admit(&r, KeySlot::Previous { until: 500 }, &src, 100),
            Err(Refusal::Expired),
            "a grace key does not outlive its principal"
        );
    }

    #[test]
    fn grace_is_an_exclusive_end() {
        let (r, src) = (Rules::default(), Source::default());
        let slot = KeySlot::Previous { until: 50 };
        assert_eq!(admit(&r, slot, &src, 49), Ok(()));
        assert_eq!(admit(&r, slot, &src, 50), Err(Refusal::GraceOver));
        assert_eq!(admit(&r, slot, &src, 51), Err(Refusal::GraceOver));
        assert_eq!(admit(&r, KeySlot::Current, &src, 51), Ok(()));
        assert_eq!(grace_until(None, 1_000).unwrap(), Some(1_000 + 86_400));
        assert_eq!(grace_until(Some(0), 1_000).unwrap(), None);
        assert_eq!(grace_until(Some(2), 1_000).unwrap(), Some(1_002));
        assert_eq!(grace_until(Some(MAX_GRACE), 0).unwrap(), Some(2_592_000));
        assert!(grace_until(Some(MAX_GRACE + 1), 0).is_err());
    }

    #[test]
    fn client_certificate_binding() {
        let r = Rules {
            client_cert: Some([7; 32]),
            ..Rules::default()
        };
        let with = |fp: Option<[u8; 32]>| Source {
            ip: None,
            client_cert_sha256: fp,
        };
        assert_eq!(admit(&r, KeySlot::Current, &with(Some([7; 32])), 0), Ok(()));
        assert_eq!(
            admit(&r, KeySlot::Current, &with(None), 0),
            Err(Refusal::NoClientCertificate)
        );
        let mut almost = [7; 32];
        almost[31] = 8;
        assert_eq!(
            admit(&r, KeySlot::Current, &with(Some(almost)), 0),
            Err(Refusal::OtherClientCertificate)
        );
        assert_eq!(
            admit(&Rules::default(), KeySlot::Current, &with(Some(almost)), 0),
            Ok(()),
            "a certificate is not required unless bound"
        );
    }

    #[test]
    fn every_rule_must_hold() {
        let r = Rules {
            expires_at: Some(100),
            networks: rules(&["10.0.0.0/8"]).networks,
            client_cert: Some([1; 32]),
        };
        let good = Source {
            ip: Some("10.0.0.5".parse().unwrap()),
            client_cert_sha256: Some([1; 32]),
        };
        assert_eq!(admit(&r, KeySlot::Current, &good, 10), Ok(()));
        let elsewhere = Source {
            ip: Some("172.16.0.1".parse().unwrap()),
            ..good
        };
        assert_eq!(
            admit(&r, KeySlot::Current, &elsewhere, 10),
            Err(Refusal::SourceAddress),
            "the right certificate from the wrong place"
        );
        let no_cert = Source {
            client_cert_sha256: None,
            ..good
        };
        assert_eq!(
            admit(&r, KeySlot::Current, &no_cert, 10),
            Err(Refusal::NoClientCertificate),
            "the right place without the certificate"
        );
    }

    #[test]
    fn requested_rules_are_checked_and_canonical() {
        let cidrs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let r = Rules::requested(
            Some("2030-01-31T00:00:00Z"),
            &cidrs(&["10.0.0.0/8", "2001:DB8::/32", "10.0.0.0/8"]),
            Some(&"AB".repeat(32)),
            0,
        )
        .unwrap();
        assert_eq!(r.expires_at, Some(1_896_048_000));
        assert_eq!(
            r.cidr_texts(),
            ["10.0.0.0/8", "2001:db8::/32"],
            "canonical, once"
        );
        assert_eq!(r.client_cert, Some([0xab; 32]));

        let secret = "10.0.0.0/8x-s3cr3t";
        let bad = [
            Rules::requested(Some("tomorrow"), &[], None, 0),
            Rules::requested(Some("2020-01-01T00:00:00Z"), &[], None, 1_700_000_000),
            Rules::requested(Some("2030-01-01T00:00:00Z"), &[], None, 1_893_456_000),
            Rules::requested(None, &cidrs(&[secret]), None, 0),
            Rules::requested(None, &cidrs(&["10.0.0.1"]), None, 0),
            Rules::requested(None, &cidrs(&["10.0.0.0/33"]), None, 0),
            Rules::requested(None, &cidrs(&["10.1.2.3/8"]), None, 0),
            Rules::requested(None, &cidrs(&["::ffff:10.0.0.0/104"]), None, 0),
            Rules::requested(None, &vec!["10.0.0.0/8".to_owned(); 65], None, 0),
            Rules::requested(None, &[], Some("ab"), 0),
            Rules::requested(None, &[], Some(&"zz".repeat(32)), 0),
            Rules::requested(None, &[], Some(&"é".repeat(32)), 0),
        ];
        for (i, r) in bad.into_iter().enumerate() {
            let m = message(r.unwrap_err());
            assert!(!m.contains("s3cr3t") && !m.contains("zz"), "case {i}: {m}");
        }
    }

    #[test]
    fn stored_rules_that_do_not_parse_are_reported() {
        let rec = |cidrs: &[&str], cert: Option<Vec<u8>>| PrincipalRecord {
            allowed_cidrs: cidrs.iter().map(|s| (*s).to_owned()).collect(),
            client_cert_sha256: cert,
            ..PrincipalRecord::default()
        };
        assert!(Rules::stored(&rec(&["10.0.0.0/8"], Some(vec![1; 32]))).is_ok());
        assert!(Rules::stored(&rec(&["nonsense"], None)).is_err());
        assert!(Rules::stored(&rec(&[], Some(vec![1; 31]))).is_err());
    }
}
