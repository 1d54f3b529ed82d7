//! The results CSV reader: `results::parse` of a runs file (`RunRow`) and of an epochs file
//! (`EpochRow`).
//!
//! Invariant checked on success: what harness writes for the rows read (`to_csv`) reads back,
//! and writes again to the same bytes.
//!
//! `parse` prints a notice on stderr for a last line without a newline: run with
//! `-close_fd_mask=2` to keep the log small (a crash's panic message then needs a rerun of the
//! input without it).

#![no_main]

use std::path::Path;

use harness::record::results::{self, EpochRow, Row, RunRow};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fn check<T: Row>(data: &[u8], path: &Path) {
    let rows = results::parse::<T>(data, path);
    common::report(T::WHAT, &rows, |rows| format!("{} rows", rows.len()));
    let Ok(rows) = rows else { return };
    let written = results::to_csv(&rows, true);
    let again = match results::parse::<T>(&written, path) {
        Ok(again) => again,
        Err(e) => panic!(
            "rows harness wrote do not read back: {e:#}\n{}",
            String::from_utf8_lossy(&written)
        ),
    };
    assert_eq!(again.len(), rows.len());
    assert_eq!(
        results::to_csv(&again, true),
        written,
        "rows read back write differently"
    );
}

fuzz_target!(|data: &[u8]| {
    check::<RunRow>(data, Path::new("fuzz/runs.csv"));
    check::<EpochRow>(data, Path::new("fuzz/epochs.csv"));
});
