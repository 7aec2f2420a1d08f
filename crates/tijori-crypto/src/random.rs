//! Randomness for keys, nonces and tokens, straight from the operating system's CSPRNG.

use crate::CryptoError;

/// `N` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|_| CryptoError::Rng)?;
    Ok(buf)
}

/// `n_bytes` random bytes, hex-encoded (2 characters a byte).
pub fn random_hex(n_bytes: usize) -> Result<String, CryptoError> {
    let mut buf = vec![0u8; n_bytes];
    getrandom::getrandom(&mut buf).map_err(|_| CryptoError::Rng)?;
    Ok(hex::encode(buf))
}

/// A uniform decimal digit. Rejection sampling (bytes >= 250 are redrawn) avoids modulo bias.
pub fn random_digit() -> Result<u8, CryptoError> {
    loop {
        let [b] = random_bytes::<1>()?;
        if b < 250 {
            return Ok(b % 10);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_cover_range() {
        let mut seen = [false; 10];
        for _ in 0..2000 {
            seen[random_digit().unwrap() as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(random_hex(16).unwrap().len(), 32);
        assert_ne!(random_hex(16).unwrap(), random_hex(16).unwrap());
    }
}
