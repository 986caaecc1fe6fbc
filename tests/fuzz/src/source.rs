//! `crate::source`: only the pgoutput decoder.

#[path = "../../../src/source/pgoutput.rs"]
pub mod pgoutput;
