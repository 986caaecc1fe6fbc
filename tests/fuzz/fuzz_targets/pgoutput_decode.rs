//! `outboxd::source::pgoutput::decode` on arbitrary bytes: it must return a message or an error,
//! never panic, and an error must render. Seeded from the captured fixtures
//! (src/source/testdata/pgoutput/*.txt, written into the corpus by scripts/fuzz.sh).
#![no_main]

use libfuzzer_sys::fuzz_target;
use outboxd_pure::source::pgoutput::decode;

fuzz_target!(|data: &[u8]| {
    match decode(bytes::Bytes::copy_from_slice(data)) {
        Ok(message) => {
            let _ = message.kind();
            let _ = format!("{message:?}");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
