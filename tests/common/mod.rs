//! Runs the real `harness` binary in a fresh temporary folder, with the user's harness and
//! cubecl variables removed, and shows everything when an expectation fails.

#![allow(dead_code)] // each test file uses its own part of this

pub mod browser;
pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root, where configs/ and data/ are.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary working folder for one test.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file relative to the folder and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// A `harness ARGS...` command in this folder, with the environment scrubbed: the user's
    /// harness and cubecl variables, and a Slurm array's or a sweep's thread settings (inside
    /// a Slurm job a sweep would otherwise run one shard), are removed. Every test starts the
    /// binary through here.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
        command.args(args).current_dir(self.path());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("HARNESS_")
                || key.starts_with("CUBECL_")
                || key.starts_with("SLURM_")
                || key == "RAYON_NUM_THREADS"
            {
                command.env_remove(key.as_ref());
            }
        }
        // A user mistake must stay one clean line even with backtraces enabled.
        command.env("RUST_BACKTRACE", "1");
        command
    }

    /// `harness ARGS...` in this folder, to the end.
    pub fn harness(&self, args: &[&str]) -> Run {
        self.run(args, self.command(args))
    }

    /// `harness ARGS...` with Vulkan pointed at nothing, so that `--backend wgpu` fails as on
    /// a machine without a GPU.
    pub fn harness_without_gpu(&self, args: &[&str]) -> Run {
        let mut command = self.command(args);
        command
            .env("VK_ICD_FILENAMES", "/nonexistent.json")
            .env("VK_DRIVER_FILES", "/nonexistent.json");
        self.run(args, command)
    }

    /// Starts `harness ARGS...` (a sweep, say), waits until `file` has `lines` lines, then kills
    /// it with SIGKILL and gives an orphaned worker time to notice and stop.
    pub fn kill_when(&self, args: &[&str], file: &Path, lines: usize) {
        use std::time::{Duration, Instant};
        let mut child = self
            .command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start harness");
        let started = Instant::now();
        while std::fs::read_to_string(file).map_or(0, |text| text.lines().count()) < lines {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} did not reach {lines} lines in 120 s",
                file.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        std::thread::sleep(Duration::from_millis(1500));
    }

    /// Runs a command made by [`Workdir::command`] (with more settings) to the end.
    pub fn run(&self, args: &[&str], mut command: Command) -> Run {
        let output = command.output().expect("run the harness binary");
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            cwd: self.path().to_path_buf(),
            output,
        }
    }
}

/// A finished `harness` process.
pub struct Run {
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Everything about the run, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "harness {}\n  cwd: {}\n  exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.cwd.display(),
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts the exit code and returns self for more checks.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "unexpected exit code\n{}",
            self.describe()
        );
        self
    }

    /// Asserts that stdout contains every needle.
    pub fn expect_stdout(&self, needles: &[&str]) -> &Self {
        self.expect_in("stdout", &self.stdout(), needles)
    }

    /// Asserts that stderr contains every needle.
    pub fn expect_stderr(&self, needles: &[&str]) -> &Self {
        self.expect_in("stderr", &self.stderr(), needles)
    }

    fn expect_in(&self, stream: &str, text: &str, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                text.contains(needle),
                "{stream} lacks {needle:?}\n{}",
                self.describe()
            );
        }
        self
    }
}

/// Whether `run` (a `--backend wgpu` command) failed only for want of a GPU adapter, on a
/// machine where wgpu is not required (HARNESS_REQUIRE_WGPU=1 in CI makes it fail instead):
/// the calling test then skips, saying why.
pub fn skipped_without_wgpu(run: &Run) -> bool {
    let required = std::env::var("HARNESS_REQUIRE_WGPU").is_ok_and(|v| v == "1");
    let missing = run.code() == Some(1)
        && run
            .stderr()
            .contains("found no Vulkan, Metal or DX12 adapter");
    if missing && !required {
        eprintln!(
            "skipped: no wgpu adapter on this machine (set HARNESS_REQUIRE_WGPU=1 to fail instead)"
        );
    }
    missing && !required
}

/// `tiny.toml` in the folder: a run of a few hundred images, about a third of a second; returns
/// its name.
pub fn tiny_config(work: &Workdir) -> String {
    work.write(
        "tiny.toml",
        &format!(
            "name = \"tiny\"\nseed = 3\n[data]\ndir = \"{}\"\ntrain_limit = 500\ntest_limit = 200\n\
             validation = 200\n[model]\nhidden = [8]\nactivation = \"relu\"\noutput = \"softmax\"\n\
             [train]\nepochs = 2\nbatch_size = 50\nloss = \"cross_entropy\"\noptimizer = \"adam\"\n\
             learning_rate = 0.01\n",
            repo().join("data/mnist").display()
        ),
    );
    "tiny.toml".to_string()
}

/// Rows of a CSV file as maps from column to value.
pub fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a well-formed CSV row");
            headers
                .iter()
                .map(String::from)
                .zip(record.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Writes rows as a results file, header first, as harness does.
pub fn write_rows<T: serde::Serialize>(path: &Path, rows: &[T]) {
    std::fs::write(path, harness::record::results::to_csv(rows, true))
        .expect("write a results file");
}

/// Appends rows (no header) to a results file written by [`write_rows`].
pub fn append_rows<T: serde::Serialize>(path: &Path, rows: &[T]) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(&harness::record::results::to_csv(rows, false)))
        .expect("append to a results file");
}
