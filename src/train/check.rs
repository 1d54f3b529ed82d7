//! `harness check`: validate configs and show what they resolve to, training nothing.

use std::path::PathBuf;

use anyhow::Result;

use crate::config;
use crate::error::exit;
use crate::text::thousands;

/// Validates each config (with the `--set` assignments) and prints its resolved settings, its
/// network, its parameter count and the memory its training needs, and its run_id.
pub fn command(configs: &[PathBuf], assignments: &[String]) -> Result<u8> {
    for path in configs {
        let settings = config::load(path, assignments)?;
        let backend = settings.backend.resolve();
        let (_, memory) = crate::train::run::memory_needed(&settings);
        if !backend.is_compiled() {
            // Valid for another build; this one's `run` would refuse it, with this message.
            if let Err(error) = crate::net::backend::select(backend) {
                eprintln!("warning: {}: {error:#}", path.display());
            }
        }
        println!(
            "# {}: ok; {} network, {} parameters, about {} to train; run_id {} on {backend}",
            path.display(),
            settings.model.shape(),
            thousands(settings.model.num_params()),
            crate::text::size(u64::try_from(memory).unwrap_or(u64::MAX)),
            settings.run_id(backend),
        );
        println!("{}", settings.to_toml());
    }
    Ok(exit::OK)
}
