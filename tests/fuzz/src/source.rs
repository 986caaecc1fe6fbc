//! `crate::source`: only the pgoutput decoder and the quoting (`cleanup` uses it).

#[path = "../../../src/source/pgoutput.rs"]
pub mod pgoutput;

#[path = "../../../src/source/quote.rs"]
pub mod quote;
