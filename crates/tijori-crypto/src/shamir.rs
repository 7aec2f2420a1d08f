//! Splitting the root key among custodians, so that no one person holds it (PCI DSS 3.6.1.2:
//! split knowledge and dual control). Shamir's secret sharing over GF(256) is the `blahaj`
//! crate's (the maintained fork of `sharks`); this module only gives a share a text form that a
//! custodian can store and type back, and that says early what is wrong with it:
//!
//! ```text
//! tjs1-<hex: vault tag (4) | threshold (1) | index (1) | share (32) | check (4)>
//! ```
//! The vault tag names the vault the share belongs to, so that a share of another vault is
//! refused when given rather than after a failed unseal; the check (a SHA-256 prefix) catches
//! typing mistakes. Neither is secret, and neither helps anyone holding fewer than the threshold
//! of shares: those reveal nothing of the key.

use blahaj::{Share, Sharks};
use zeroize::{Zeroize, Zeroizing};

use crate::{sha256, CryptoError, SecretKey};

const PREFIX: &str = "tjs1-";
const CHECK_TAG: &[u8] = b"tijori-key-share-v1\0";
/// Bytes of a share's body: tag, threshold, index, share, check.
const BODY: usize = 4 + 1 + 1 + 32 + 4;

/// One custodian's share of the root key. No `Debug`, `Clone` or `Display`: it is secret;
/// [`KeyShare::to_text`] is the one way out.
pub struct KeyShare {
    vault: [u8; 4],
    threshold: u8,
    index: u8,
    y: Zeroizing<[u8; 32]>,
}

impl KeyShare {
    /// Reads a share as [`KeyShare::to_text`] wrote it; spaces, dashes and line breaks within
    /// it are ignored, so that it can be typed in groups.
    pub fn parse(text: &str) -> Result<KeyShare, CryptoError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix(PREFIX) else {
            return Err(CryptoError::Malformed(
                "not a Tijori key share: a share starts with tjs1-",
            ));
        };
        let hex: Zeroizing<String> = Zeroizing::new(
            rest.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect(),
        );
        let mut body = Zeroizing::new([0u8; BODY]);
        hex::decode_to_slice(hex.as_bytes(), body.as_mut()).map_err(|_| {
            CryptoError::Malformed(
                "this key share is damaged or mistyped: it is not 84 hexadecimal digits after tjs1-",
            )
        })?;
        let (data, check) = body.split_at(BODY - 4);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&checksum(data)[..], check)) {
            return Err(CryptoError::Malformed(
                "this key share is damaged or mistyped: its check digits do not match",
            ));
        }
        let (threshold, index) = (data[4], data[5]);
        if threshold < 2 || index == 0 || index < 1 {
            return Err(CryptoError::Malformed(
                "this key share is not a valid share (threshold or index out of range)",
            ));
        }
        let mut y = Zeroizing::new([0u8; 32]);
        y.copy_from_slice(&data[6..38]);
        Ok(KeyShare {
            vault: [data[0], data[1], data[2], data[3]],
            threshold,
            index,
            y,
        })
    }

    /// The text a custodian keeps.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut body = Zeroizing::new(Vec::with_capacity(BODY));
        body.extend_from_slice(&self.vault);
        body.push(self.threshold);
        body.push(self.index);
        body.extend_from_slice(self.y.as_ref());
        let check = checksum(&body);
        body.extend_from_slice(&check);
        Zeroizing::new(format!("{PREFIX}{}", hex::encode(&*body)))
    }

    /// The tag of the vault this share belongs to.
    pub fn vault(&self) -> [u8; 4] {
        self.vault
    }

    /// How many shares open the vault.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// This share's number (1 to the number of shares made).
    pub fn index(&self) -> u8 {
        self.index
    }
}

fn checksum(data: &[u8]) -> [u8; 4] {
    let mut input = Zeroizing::new(CHECK_TAG.to_vec());
    input.extend_from_slice(data);
    let h = sha256(&input);
    [h[0], h[1], h[2], h[3]]
}

/// Splits `root` into `count` shares of which any `threshold` rebuild it (2 ≤ threshold ≤
/// count ≤ 255).
pub fn split(
    root: &SecretKey,
    vault: [u8; 4],
    threshold: u8,
    count: u8,
) -> Result<Vec<KeyShare>, CryptoError> {
    if threshold < 2 || count < threshold {
        return Err(CryptoError::Malformed(
            "a key split needs a threshold of at least 2 and at least as many shares",
        ));
    }
    Sharks(threshold)
        .dealer(root.expose_secret())
        .take(usize::from(count))
        .map(|share| {
            let mut bytes = Zeroizing::new(Vec::from(&share));
            let share = KeyShare::from_dealt(vault, threshold, &bytes);
            bytes.zeroize();
            share
        })
        .collect()
}

impl KeyShare {
    /// From `blahaj`'s byte form: the index, then one byte per key byte.
    fn from_dealt(vault: [u8; 4], threshold: u8, bytes: &[u8]) -> Result<KeyShare, CryptoError> {
        let (&index, y) = bytes
            .split_first()
            .ok_or(CryptoError::Malformed("empty share"))?;
        let mut out = Zeroizing::new([0u8; 32]);
        if y.len() != 32 || index == 0 {
            return Err(CryptoError::Malformed(
                "the dealer made a share of the wrong size",
            ));
        }
        out.copy_from_slice(y);
        Ok(KeyShare {
            vault,
            threshold,
            index,
            y: out,
        })
    }
}

/// Rebuilds the root key from shares of one split. With fewer than the threshold, or with a
/// share of another split, the result is a wrong key (Shamir's scheme cannot tell): the caller
/// finds out when the key unwraps nothing.
pub fn combine(shares: &[KeyShare]) -> Result<SecretKey, CryptoError> {
    let parsed: Vec<Share> = shares
        .iter()
        .map(|s| {
            let mut bytes = Zeroizing::new(Vec::with_capacity(33));
            bytes.push(s.index);
            bytes.extend_from_slice(s.y.as_ref());
            Share::try_from(bytes.as_slice()).map_err(CryptoError::Malformed)
        })
        .collect::<Result<_, _>>()?;
    let threshold = shares.first().map(|s| s.threshold).unwrap_or(2);
    let secret =
        Zeroizing::new(Sharks(threshold).recover(&parsed).map_err(|_| {
            CryptoError::Malformed("not enough distinct shares to rebuild the key")
        })?);
    SecretKey::from_slice(&secret).ok_or(CryptoError::Malformed("rebuilt key has the wrong size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(shares: &[KeyShare]) -> Vec<String> {
        shares.iter().map(|s| s.to_text().to_string()).collect()
    }

    #[test]
    fn any_threshold_of_shares_rebuilds_the_key_and_fewer_do_not() {
        let root = SecretKey::generate().unwrap();
        let shares = split(&root, *b"vlt1", 3, 5).unwrap();
        assert_eq!(shares.len(), 5);
        let text = texts(&shares);
        for pick in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
            let some: Vec<KeyShare> = pick
                .iter()
                .map(|&i| KeyShare::parse(&text[i]).unwrap())
                .collect();
            assert_eq!(
                combine(&some).unwrap().expose_secret(),
                root.expose_secret()
            );
        }
        let two: Vec<KeyShare> = text[..2]
            .iter()
            .map(|t| KeyShare::parse(t).unwrap())
            .collect();
        assert_ne!(
            combine(&two).map(|k| *k.expose_secret()).ok(),
            Some(*root.expose_secret()),
            "two of three give no key"
        );
        let s = KeyShare::parse(&text[3]).unwrap();
        assert_eq!((s.vault(), s.threshold(), s.index()), (*b"vlt1", 3, 4));
    }

    #[test]
    fn mistyped_or_foreign_text_is_refused_with_a_reason() {
        let root = SecretKey::generate().unwrap();
        let text = texts(&split(&root, *b"vlt1", 2, 3).unwrap());
        // Grouped and wrapped as a custodian might type it: still accepted.
        let spaced: String = text[0]
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i > 5 && i % 6 == 0).then_some(' ').into_iter().chain([c]))
            .collect();
        assert!(KeyShare::parse(&format!(" {spaced}\n")).is_ok());
        let mut typo = text[0].clone().into_bytes();
        let at = 20;
        typo[at] = if typo[at] == b'0' { b'1' } else { b'0' };
        let typo = String::from_utf8(typo).unwrap();
        for bad in [typo.as_str(), "tjs1-00", "hello", &text[0][..60]] {
            let err = KeyShare::parse(bad).err().unwrap().to_string();
            assert!(!err.contains(&text[0][5..20]), "no share in errors: {err}");
        }
        assert!(split(&root, *b"vlt1", 1, 3).is_err());
        assert!(split(&root, *b"vlt1", 4, 3).is_err());
    }
}
