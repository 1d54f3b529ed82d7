//! Shared by the fuzz targets (each uses some of it).

#![allow(dead_code)]

use std::sync::OnceLock;

/// Whether to print each input's outcome (`HARNESS_FUZZ_SHOW=1`): to check that the seeds parse,
/// e.g. `HARNESS_FUZZ_SHOW=1 cargo +nightly fuzz run config seeds/config -- -runs=0`.
pub fn show() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("HARNESS_FUZZ_SHOW").is_some_and(|v| v != "0"))
}

/// Prints an outcome when [`show`] says so: `Ok` with a summary, or the error.
pub fn report<T>(what: &str, result: &anyhow::Result<T>, summary: impl Fn(&T) -> String) {
    if show() {
        match result {
            Ok(value) => eprintln!("{what}: Ok {}", summary(value)),
            Err(e) => eprintln!("{what}: Err {e:#}"),
        }
    }
}

/// The first line (without its newline) and the rest: the `--set` assignment and the source.
pub fn split_first_line(text: &str) -> (&str, &str) {
    text.split_once('\n').unwrap_or((text, ""))
}
