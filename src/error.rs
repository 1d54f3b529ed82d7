//! Error kinds that decide the process exit code.
//!
//! Everything is an `anyhow::Error`; a [`UserError`] anywhere in the chain marks a mistake the
//! user can fix (a bad config, a wrong path, a bad flag) and maps to exit code 2. Other errors
//! are failures of the run itself (exit code 1).

use std::fmt;

/// A mistake in what the user asked for: bad input, not a failure of the tool.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Builds an `anyhow::Error` marked as the user's mistake.
pub fn user_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(message.into()))
}

/// Whether any error in the chain is a [`UserError`].
pub fn is_user_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<UserError>())
}

/// Exit codes, documented in README.md.
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// A run failed or diverged, or the tool hit an error that is not the user's.
    pub const FAILED: u8 = 1;
    /// A usage or configuration error: nothing was trained or written.
    pub const USAGE: u8 = 2;
}

/// A did-you-mean hint for `given` among `choices`, or an empty string.
pub fn suggestion<'a>(given: &str, choices: impl IntoIterator<Item = &'a str>) -> String {
    choices
        .into_iter()
        // Without regard to case: `ReLU` is a near miss of `relu`.
        .map(|choice| {
            let score = strsim::jaro_winkler(&given.to_lowercase(), &choice.to_lowercase());
            (score, choice)
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, choice)| format!(" (did you mean \"{choice}\"?)"))
        .unwrap_or_default()
}

/// The first panic of the process, with the thread it happened in.
static FIRST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Records panics instead of printing them, so a backend failure in a worker thread (burn-wgpu
/// panics there when a device cannot be used) reaches the user as one clean line.
///
/// Set `HARNESS_PANIC_TRACE=1` to get Rust's default panic output as well (for debugging).
pub fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    let show_default = std::env::var_os("HARNESS_PANIC_TRACE").is_some_and(|v| v == "1");
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let location = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        let entry = format!(
            "[thread {}] {message}{location}",
            thread.name().unwrap_or("unnamed")
        );
        if let Ok(mut first) = FIRST_PANIC.lock() {
            first.get_or_insert(entry);
        }
        if show_default {
            default_hook(info);
        }
    }));
}

/// Takes the first recorded panic message, if any.
pub fn take_panic_message() -> Option<String> {
    FIRST_PANIC.lock().ok().and_then(|mut first| first.take())
}
