//! The configuration path on arbitrary text: `Config::from_toml`, then, on success, what
//! `Plan::from_config` resolves without I/O or librdkafka: the tables, the router options, the
//! converters and their combination, the `[errors]` policy, the `[kafka]` strings. (Not built
//! here: the connection URL, in `source::params`, and the librdkafka properties, in
//! `sink::config`.) Seeded from config/outboxd.toml by scripts/fuzz.sh.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outboxd_pure::config::Config;
use outboxd_pure::convert::Converters;
use outboxd_pure::dead_letter::ErrorPolicy;
use outboxd_pure::router::RouterOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `${file:PATH}` reads a file (think /dev/zero): not for a fuzzer.
    if text.contains("file:") {
        return;
    }
    let config = match Config::from_toml(text) {
        Ok(config) => config,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let _ = config.tables().map_err(|e| e.to_string());
    let _ = Config::string_map("kafka", &config.kafka).map_err(|e| e.to_string());
    if let Ok(map) = Config::string_map("errors", &config.errors) {
        let _ = ErrorPolicy::from_map(&map, &config.source.slot).map_err(|e| e.to_string());
    }
    let router = Config::string_map("router", &config.router)
        .ok()
        .and_then(|map| {
            RouterOptions::from_map(&map)
                .map_err(|e| e.to_string())
                .ok()
        });
    let converters = Config::string_map("converters", &config.converters)
        .ok()
        .and_then(|map| Converters::from_map(&map).map_err(|e| e.to_string()).ok());
    if let (Some(router), Some(converters)) = (router, converters) {
        let _ = router
            .check_converters(&converters)
            .map_err(|e| e.to_string());
        let _ = router.required_columns();
    }
});
