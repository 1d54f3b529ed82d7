//! The `harness` binary: parse the command line, run the command, print one error, pick the
//! exit code (0 ok, 1 failed or diverged, 2 usage or config error).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use harness::cli::{Cli, Command};
use harness::config::{self, Override};
use harness::error::{exit, install_panic_hook, is_user_error, take_panic_message};
use harness::experiment::Experiment;
use harness::results::Status;
use harness::run::{self, Progress, thousands};
use harness::{bench, inspect, merge, plot, predict, report, sweep};

/// Training small networks makes dozens of short-lived tensor allocations per step; mimalloc
/// serves them faster than glibc's allocator (BENCHMARKS.md, "Levers measured").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_panic_hook();
    let outcome = catch_unwind(AssertUnwindSafe(|| execute(cli)));
    let code = match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("error: {error:#}");
            if is_user_error(&error) {
                exit::USAGE
            } else {
                exit::FAILED
            }
        }
        Err(_) => {
            let message = take_panic_message().unwrap_or_else(|| "unknown panic".into());
            eprintln!("error: internal error (a bug in harness, please report it): {message}");
            exit::FAILED
        }
    };
    ExitCode::from(code)
}

fn execute(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run {
            config,
            overrides,
            quiet,
        } => {
            let settings = config::load(&config, &overrides.assignments())?;
            let progress = if quiet {
                Progress::Quiet
            } else {
                Progress::auto()
            };
            let report = run::run(&settings, progress, run::Record::Always)?;
            let row = &report.row;
            let saved = report
                .model_file
                .map(|path| format!(", model {}", path.display()))
                .unwrap_or_default();
            println!(
                "{}: {} test accuracy {:.4} ({} parameters, {} on {}, {:.1} s train, {:.1} s \
                 total); row {} appended to {}{saved}",
                row.name,
                match row.status {
                    Status::Ok => "ok,",
                    Status::Diverged => "DIVERGED,",
                    Status::Failed => "FAILED,",
                },
                row.test_accuracy,
                thousands(row.params),
                row.backend,
                row.device,
                row.train_seconds,
                row.total_seconds,
                row.run_id,
                report.runs_csv.display(),
            );
            if row.status == Status::Failed {
                eprintln!("error: {}", row.error);
            }
            Ok(if row.status == Status::Ok {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Sweep {
            experiment,
            dry_run,
            jobs,
            shard,
            retry_failed,
            force,
            fail_fast,
            strict,
            overrides,
        } => {
            let set = overrides.assignments();
            let experiment = Experiment::load(&experiment, &parse_overrides(&set)?)?;
            let options = sweep::Options {
                jobs: usize::from(jobs),
                shard,
                dry_run,
                retry_failed,
                force,
                fail_fast,
                strict,
                set,
            };
            sweep::sweep(&experiment, &options)
        }
        Command::Merge { inputs, output } => {
            let merged = merge::merge(&inputs, &output)?;
            println!(
                "{}: {} rows from {} files ({} repeated rows dropped)",
                output.display(),
                merged.written,
                inputs.len(),
                merged.read - merged.written
            );
            Ok(exit::OK)
        }
        Command::Worker {
            experiment: path,
            index,
            set,
            force,
        } => {
            let experiment = Experiment::load(&path, &parse_overrides(&set)?)?;
            sweep::worker(&path, index, &experiment, force)
        }
        Command::Plot {
            runs,
            epochs,
            output,
            size,
            run_ids,
            filter,
        } => {
            let epochs = epochs.unwrap_or_else(|| runs.with_file_name("epochs.csv"));
            let selection = plot::Selection {
                runs: run_ids,
                filters: filter,
            };
            let written = plot::plot(&runs, &epochs, &output, size, &selection)?;
            for file in written.files {
                println!("{}", file.display());
            }
            Ok(exit::OK)
        }
        Command::Inspect {
            target,
            runs,
            models,
            output,
            image,
        } => {
            let loaded = inspect::load(&target, &runs, &models)?;
            let out =
                output.unwrap_or_else(|| Path::new("results/inspect").join(&loaded.row.run_id));
            if let Some(image) = image {
                let probe = inspect::Probe::parse(&image);
                println!("{}", inspect::activations(&loaded, &probe, &out)?.display());
            }
            for file in inspect::inspect(&loaded, &out)? {
                println!("{}", file.display());
            }
            Ok(exit::OK)
        }
        Command::Predict {
            target,
            images,
            runs,
            models,
            no_invert,
            json,
        } => {
            let loaded = inspect::load(&target, &runs, &models)?;
            let paths: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
            for answer in predict::predict(&loaded, &paths, !no_invert)? {
                if json {
                    println!("{}", serde_json::to_string(&answer)?);
                } else {
                    let outputs: Vec<String> =
                        answer.outputs.iter().map(|v| format!("{v:.3}")).collect();
                    println!(
                        "{}: {}{} [{}]",
                        answer.image,
                        answer.digit,
                        if answer.inverted { " (inverted)" } else { "" },
                        outputs.join(" ")
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Report {
            runs,
            group_by,
            output,
            html,
            epochs,
            models,
            pictures,
        } => {
            if html {
                harness::html::report(&runs, epochs, models, output, pictures)?;
                return Ok(exit::OK);
            }
            let table = report::markdown(&runs, &group_by)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &table)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    println!("report written to {}", path.display());
                }
                None => print!("{table}"),
            }
            Ok(exit::OK)
        }
        Command::Bench {
            configs,
            backends,
            epochs,
            json,
        } => {
            let options = bench::Options {
                configs,
                backends,
                epochs: usize::from(epochs),
                json,
            };
            bench::bench(&options)?;
            Ok(exit::OK)
        }
        Command::Check { configs, overrides } => {
            for path in configs {
                let settings = config::load(&path, &overrides.assignments())?;
                let backend = settings.backend.resolve();
                println!(
                    "# {}: ok; {} network, {} parameters; run_id {} on {backend}",
                    path.display(),
                    settings.model.shape(),
                    thousands(settings.model.num_params()),
                    settings.run_id(backend),
                );
                println!("{}", settings.to_toml());
            }
            Ok(exit::OK)
        }
    }
}

fn parse_overrides(set: &[String]) -> anyhow::Result<Vec<Override>> {
    set.iter().map(|s| Override::parse(s)).collect()
}
