//! The config parser and `--set` overrides: `Override::parse` and `config::parse`.
//!
//! Input: the first line is a `--set` assignment (`train.epochs=3`; an empty line for none), the
//! rest a config file. The source is parsed whether or not the assignment is valid.
//!
//! Invariants checked on success: an override has a dotted key without empty parts; valid
//! settings name their config, have a valid name and a 12-character run id, and the resolved
//! TOML that `harness check` prints parses back to the same settings and run id.

#![no_main]

use std::path::Path;

use harness::net::backend::BackendName;
use harness::config::{self, Override};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (assignment, source) = common::split_first_line(&text);
    let path = Path::new("fuzz/config.toml");

    let mut overrides = Vec::new();
    if !assignment.is_empty() {
        let change = Override::parse(assignment);
        common::report("override", &change, |c| format!("{} = {}", c.key, c.value));
        if let Ok(change) = change {
            assert!(!change.key.is_empty(), "empty key from {assignment:?}");
            assert!(
                !change.key.split('.').any(str::is_empty),
                "key {:?} has an empty part",
                change.key
            );
            assert_eq!(change.key, change.key.trim());
            assert!(change.origin.starts_with("--set "));
            overrides.push(change);
        }
    }

    let settings = config::parse(source, path, &overrides);
    common::report("config", &settings, |s| {
        format!("{} {:?}", s.name, s.model.hidden)
    });
    let Ok(settings) = settings else { return };
    assert_eq!(settings.config.as_deref(), Some(path));
    assert!(
        config::check_name(&settings.name).is_ok(),
        "valid settings with an invalid name {:?}",
        settings.name
    );
    let id = settings.run_id(settings.backend);
    assert_eq!(id.len(), 12, "run id {id:?}");
    assert!(id.starts_with('r'), "run id {id:?}");

    // What `harness check` prints is a config that gives the same run.
    let resolved = settings.to_toml();
    let again = match config::parse(&resolved, path, &[]) {
        Ok(again) => again,
        Err(e) => panic!("the resolved config does not parse back: {e:#}\n{resolved}"),
    };
    assert_eq!(again, settings, "the resolved config differs:\n{resolved}");
    assert_eq!(
        again.run_id(BackendName::Flex),
        settings.run_id(BackendName::Flex)
    );
});
