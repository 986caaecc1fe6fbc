//! `Lsn`: a PostgreSQL WAL position (log sequence number).
//!
//! A newtype over `u64` so that positions cannot be confused with sequence numbers or byte counts.
//! Displayed and parsed in Postgres' own `X/Y` form (upper and lower 32 bits in hex), e.g. `0/16B3748`.

use std::fmt;
use std::str::FromStr;

/// A WAL position. `Lsn(0)` is Postgres' `InvalidXLogRecPtr` (`0/0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/0`: "no position"; `START_REPLICATION ... 0/0` resumes from the slot's confirmed position.
    pub const ZERO: Lsn = Lsn(0);
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The text was not of the form `X/Y` with hexadecimal halves.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid LSN {0:?}: expected the Postgres form X/Y with hexadecimal halves, e.g. 0/16B3748"
)]
pub struct ParseLsnError(pub String);

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseLsnError(s.to_string());
        let (hi, lo) = s.split_once('/').ok_or_else(err)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let lsn = Lsn(0x1_0000_00AB);
        assert_eq!(lsn.to_string(), "1/AB");
        assert_eq!("1/AB".parse::<Lsn>().unwrap(), lsn);
        assert_eq!("0/16B3748".parse::<Lsn>().unwrap(), Lsn(0x16B3748));
        assert_eq!(Lsn::ZERO.to_string(), "0/0");
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "16B3748", "0/", "/1", "G/1", "1/2/3", "100000000/0"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad} should not parse");
        }
    }
}
