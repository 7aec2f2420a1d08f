//! Randomness for keys, nonces and tokens, straight from the operating system's CSPRNG.

use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;

/// `N` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|_| CryptoError::Rng)?;
    Ok(buf)
}

/// `n_bytes` random bytes, hex-encoded (2 characters a byte).
pub fn random_hex(n_bytes: usize) -> Result<String, CryptoError> {
    // Often a secret (an API key's, a session token's): the raw bytes are wiped once encoded.
    let mut buf = Zeroizing::new(vec![0u8; n_bytes]);
    getrandom::getrandom(&mut buf).map_err(|_| CryptoError::Rng)?;
    Ok(hex::encode(&*buf))
}

/// Bytes from the OS CSPRNG, drawn many at a time and handed out once each. A batch of a
/// thousand tokens needs two thousand draws (each token's own bytes and its nonce); one
/// `getrandom` call for them all saves the kernel's setup of each call, which was 4% of a
/// batch's CPU. A byte handed out is erased from the pool, and the rest are zeroized on drop.
/// Never `Clone`: a copy would hand out the same bytes again, and nonces would repeat.
pub struct RandomPool {
    buf: Zeroizing<Vec<u8>>,
    /// The first byte not yet handed out; `buf.len()` when the pool is used up.
    next: usize,
}

impl RandomPool {
    /// A pool of `capacity` bytes (at least 64), drawn when first needed and drawn again
    /// whenever too few are left. Nothing is drawn here.
    pub fn new(capacity: usize) -> RandomPool {
        let len = capacity.max(64);
        RandomPool {
            buf: Zeroizing::new(vec![0; len]),
            next: len,
        }
    }

    /// Fills `out` with bytes never handed out before.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
        if out.len() > self.buf.len() {
            return getrandom::getrandom(out).map_err(|_| CryptoError::Rng);
        }
        if self.buf.len() - self.next < out.len() {
            getrandom::getrandom(&mut self.buf).map_err(|_| CryptoError::Rng)?;
            self.next = 0;
        }
        let taken = &mut self.buf[self.next..self.next + out.len()];
        out.copy_from_slice(taken);
        taken.zeroize();
        self.next += out.len();
        Ok(())
    }

    /// `N` bytes, as [`random_bytes`].
    pub fn bytes<const N: usize>(&mut self) -> Result<[u8; N], CryptoError> {
        let mut out = [0u8; N];
        self.fill(&mut out)?;
        Ok(out)
    }

    /// `n_bytes` bytes hex-encoded, as [`random_hex`].
    pub fn hex(&mut self, n_bytes: usize) -> Result<String, CryptoError> {
        let mut buf = Zeroizing::new(vec![0u8; n_bytes]);
        self.fill(&mut buf)?;
        Ok(hex::encode(&*buf))
    }

    /// A uniform decimal digit. Rejection sampling (bytes >= 250 are drawn again) avoids
    /// modulo bias.
    pub fn digit(&mut self) -> Result<u8, CryptoError> {
        loop {
            let [b] = self.bytes::<1>()?;
            if b < 250 {
                return Ok(b % 10);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool never hands out the same bytes twice, across refills, and serves requests larger
    /// than itself straight from the OS.
    #[test]
    fn a_pool_hands_out_fresh_bytes_once() {
        let mut pool = RandomPool::new(64);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            // 100 draws of 16 bytes from a 64-byte pool: 25 refills.
            assert!(seen.insert(pool.bytes::<16>().unwrap()));
        }
        assert_eq!(pool.hex(100).unwrap().len(), 200);
        let mut seen_digits = [false; 10];
        for _ in 0..2000 {
            seen_digits[pool.digit().unwrap() as usize] = true;
        }
        assert!(seen_digits.iter().all(|s| *s));
    }

    #[test]
    fn hex_is_fresh_and_sized() {
        assert_eq!(random_hex(16).unwrap().len(), 32);
        assert_ne!(random_hex(16).unwrap(), random_hex(16).unwrap());
    }
}
