//! outboxd's pure modules, compiled from the main crate's own source files: the pgoutput decoder,
//! the configuration file (and `cleanup`, its `[cleanup]` section), the router and the converters, the dead-letter policy, the position rules. Nothing else of
//! the main crate is built, so the fuzz build does not compile librdkafka, tokio or the Postgres
//! client again with instrumentation (see docs/fuzzing.md).
//!
//! The module tree mirrors the main crate's, so the files' `crate::` paths resolve. A pure module
//! that starts using one that is not here breaks this build: scripts/fuzz.sh (run by CI) says so.
#![allow(dead_code, unused_imports)]

#[path = "../../../src/cleanup.rs"]
pub mod cleanup;
#[path = "../../../src/config.rs"]
pub mod config;
#[path = "../../../src/convert.rs"]
pub mod convert;
#[path = "../../../src/dead_letter.rs"]
pub mod dead_letter;
#[path = "../../../src/exactly_once.rs"]
pub mod exactly_once;
#[path = "../../../src/lsn.rs"]
pub mod lsn;
#[path = "../../../src/position.rs"]
pub mod position;
#[path = "../../../src/router/mod.rs"]
pub mod router;
#[path = "../../../src/secrets.rs"]
pub mod secrets;

pub mod source;
