//! 128-bit ids: machine ids, container UUIDs and boot ids, as systemd formats
//! them.

use crate::error::{Context, Error, Result};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id128(pub [u8; 16]);

impl Id128 {
    /// A random v4 UUID, from the kernel's random pool.
    pub fn random() -> Result<Self> {
        let mut b = [0u8; 16];
        let mut filled = 0;
        while filled < b.len() {
            // SAFETY: the pointer and length describe the unfilled part of `b`.
            let n =
                unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
            if n < 0 {
                return Err(nix::errno::Errno::last()).ctx(|| "cannot get random bytes".into());
            }
            filled += n as usize;
        }
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Ok(Id128(b))
    }

    /// Accepts 32 hex digits, or the 36-character UUID form with dashes.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::invalid(format!("Invalid UUID: {s}"));
        let hex: String = if s.len() == 36 {
            let dashes = [8, 13, 18, 23];
            if !dashes.iter().all(|&i| s.as_bytes()[i] == b'-') {
                return Err(bad());
            }
            s.chars().filter(|&c| c != '-').collect()
        } else {
            s.to_string()
        };
        if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        if b == [0; 16] {
            return Err(bad());
        }
        Ok(Id128(b))
    }

    /// 32 lower-case hex digits, as in `/etc/machine-id`.
    pub fn plain(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The UUID form with dashes, as in `$container_uuid` and `boot_id`.
impl fmt::Display for Id128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.plain();
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = Id128::parse("0123456789abcdef0123456789ABCDEF").unwrap();
        assert_eq!(id.plain(), "0123456789abcdef0123456789abcdef");
        assert_eq!(id.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(Id128::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "xyz",
            "0123456789abcdef",
            "00000000000000000000000000000000",
            "0123456789abcdef0123456789abcdeg",
            "01234567-89ab-cdef-0123+456789abcdef",
        ] {
            assert!(Id128::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_is_v4() {
        let a = Id128::random().unwrap();
        assert_ne!(a, Id128::random().unwrap());
        assert_eq!(a.0[6] >> 4, 4);
    }
}
