//! The `harness` binary: parse the command line, run the command, print one error, pick the
//! exit code (0 ok, 1 failed or diverged, 2 usage or config error).

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use harness::cli::{Cli, Command};
use harness::config::{self, Override};
use harness::error::{exit, install_panic_hook, is_user_error, take_panic_message};
use harness::record::{merge, saved, upgrade};
use harness::search::experiment::Experiment;
use harness::search::sweep;
use harness::train::run::{self, Progress};
use harness::train::{bench, check};
use harness::views::{export, html, inspect, plot, predict, report};

/// Training small networks makes dozens of short-lived tensor allocations per step; mimalloc
/// serves them faster than glibc's allocator (BENCHMARKS.md, "Levers measured").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    restore_sigpipe();
    private_runtime_dir();
    let cli = Cli::try_parse().unwrap_or_else(|error| usage_error(error));
    install_panic_hook();
    let outcome = catch_unwind(AssertUnwindSafe(|| execute(cli)));
    // Messages go out with errors ignored: a closed or full stderr must not turn an error
    // into a crash.
    let say = |message: String| {
        let _ = writeln!(std::io::stderr(), "{message}");
    };
    let code = match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            say(format!("error: {error:#}"));
            if is_user_error(&error) {
                exit::USAGE
            } else {
                exit::FAILED
            }
        }
        Err(_) => {
            let message = take_panic_message().unwrap_or_else(|| "unknown panic".into());
            if let Some((_, reason)) = message.split_once("failed printing to stdout: ") {
                // Not a bug: the output went to a full disk, say (the results are recorded).
                let reason = reason.split(" at ").next().unwrap_or(reason);
                say(format!(
                    "error: cannot write harness's output to stdout: {reason}"
                ));
            } else {
                say(format!(
                    "error: internal error (a bug in harness, please report it): {message}"
                ));
            }
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
            restart,
        } => {
            let settings = config::load(&config, &overrides.assignments())?;
            let progress = if quiet {
                Progress::Quiet
            } else {
                Progress::auto()
            };
            run::command(&settings, progress, restart)
        }
        Command::Sweep {
            experiment,
            dry_run,
            jobs,
            shard,
            rung,
            select_from,
            retry_failed,
            force,
            restart,
            fail_fast,
            strict,
            overrides,
        } => {
            let set = overrides.assignments();
            let experiment = Experiment::load(&experiment, &parse_overrides(&set)?)?;
            let options = sweep::Options {
                jobs: usize::from(jobs),
                shard,
                rung,
                select_from,
                dry_run,
                retry_failed,
                force,
                restart,
                fail_fast,
                strict,
                set,
            };
            sweep::sweep(&experiment, &options)
        }
        Command::Merge { inputs, output } => merge::command(&inputs, &output),
        Command::Upgrade {
            runs,
            epochs,
            runs_only,
        } => upgrade::command(&runs, epochs.as_deref(), runs_only),
        Command::Worker {
            experiment,
            run_id,
            rung,
            budget,
            base,
            sources,
            set,
            force,
            restart,
        } => sweep::worker(&sweep::WorkerArgs {
            experiment,
            run_id,
            rung,
            budget,
            base,
            sources,
            overrides: parse_overrides(&set)?,
            force,
            restart,
        }),
        Command::Plot {
            runs,
            epochs,
            output,
            size,
            run_ids,
            filter,
            compare,
        } => {
            let epochs = epochs.unwrap_or_else(|| harness::record::upgrade::epochs_beside(&runs));
            let selection = plot::Selection {
                compare,
                runs: run_ids,
                filters: filter,
            };
            plot::command(&runs, &epochs, &output, size, &selection)
        }
        Command::Inspect {
            target,
            runs,
            models,
            output,
            image,
        } => {
            let loaded = saved::load(&target, &runs, &models)?;
            inspect::command(&loaded, output.as_deref(), image.as_deref())
        }
        Command::Predict {
            target,
            images,
            runs,
            models,
            no_invert,
            json,
        } => {
            let loaded = saved::load(&target, &runs, &models)?;
            let paths: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
            predict::command(&loaded, &paths, !no_invert, json)
        }
        Command::Export {
            target,
            format,
            output,
            force,
            runs,
            models,
        } => {
            let loaded = saved::load(&target, &runs, &models)?;
            export::command(&loaded, format, output.as_deref(), force)
        }
        Command::Serve {
            source,
            port,
            host,
            allow_host,
            open,
        } => harness::views::serve::command(&harness::views::serve::Options {
            source,
            host,
            port,
            allow_hosts: allow_host,
            open,
        }),
        Command::Report {
            runs,
            group_by,
            output,
            html,
            epochs,
            models,
            pictures,
            importance,
            metric,
            json,
        } => {
            if importance {
                use harness::choice::Choice;
                let metric = harness::config::Metric::parse(&metric).map_err(|message| {
                    harness::error::user_error(format!("--metric {metric}: {message}"))
                })?;
                return report::importance_command(&runs, metric, json, output.as_deref());
            }
            if html {
                html::report(&runs, epochs, models, output, pictures)?;
                return Ok(exit::OK);
            }
            report::command(&runs, &group_by, output.as_deref())
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
        Command::Check { configs, overrides } => check::command(&configs, &overrides.assignments()),
    }
}

/// Prints clap's message, with a hint when an unknown flag names a config key (`--epochs 5`:
/// `--set train.epochs=5`), and exits with clap's code (2 for a usage error).
fn usage_error(error: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() == ErrorKind::UnknownArgument
        && let Some(ContextValue::String(flag)) = error.get(ContextKind::InvalidArg)
        && let Some(key) = harness::config::key_for_flag(flag)
    {
        let args: Vec<String> = std::env::args().collect();
        // The value as given: `--epochs=5`, or the word after `--epochs`.
        let given = args.iter().position(|a| {
            a == flag
                || a.strip_prefix(flag.as_str())
                    .is_some_and(|r| r.starts_with('='))
        });
        let value = given
            .and_then(|i| match args[i].split_once('=') {
                Some((_, value)) => Some(value.to_string()),
                None => args
                    .get(i + 1)
                    .filter(|next| !next.starts_with('-'))
                    .cloned(),
            })
            .unwrap_or_else(|| "VALUE".into());
        // Quoted where a shell would expand it (zsh: `[32,32]` is a glob).
        let assignment = format!("{key}={value}");
        let assignment = if assignment.contains(|c: char| "[]*?{}() \"'$".contains(c)) {
            format!("'{}'", assignment.replace('\'', "'\\''"))
        } else {
            assignment
        };
        let _ = writeln!(
            std::io::stderr(),
            "error: harness has no flag {flag}; config keys are set with --set: --set \
             {assignment} (configs/default.toml lists every key)"
        );
        std::process::exit(i32::from(exit::USAGE));
    }
    error.exit()
}

fn parse_overrides(set: &[String]) -> anyhow::Result<Vec<Override>> {
    set.iter().map(|s| Override::parse(s)).collect()
}

/// Mesa's Vulkan drivers (lavapipe among them) print "XDG_RUNTIME_DIR is invalid or not set"
/// several times per wgpu run when the variable is unset (in containers, cron jobs, CI, over
/// ssh without a login session), which reads like harness's own error. When it is unset, point
/// it at a folder of this user's own, `$TMPDIR/harness-runtime-<uid>` (mode 0700; one that
/// exists and is not ours alone is left alone, and so is the variable).
fn private_runtime_dir() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
            return;
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        let dir = std::env::temp_dir().join(format!("harness-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let ours = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
        if ours {
            // SAFETY: called first thing in main, before any other thread exists, so nothing
            // reads the environment while it changes.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}

/// Rust ignores SIGPIPE, so a closed pipe (`harness sweep --dry-run | head -1`) makes `println!`
/// panic. Restore the default: harness ends quietly when its reader goes away, as `cat` does.
fn restore_sigpipe() {
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
