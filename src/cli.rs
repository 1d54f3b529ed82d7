//! Command-line interface: clap types, help text from doc comments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::choice::Choice;
use crate::net::backend::BackendName;
use crate::search::experiment::Shard;

/// Train and compare small neural networks on MNIST with burn.
///
/// Starts from 3Blue1Brown's "But what is a neural network?": a 784-16-16-10 network of
/// sigmoid neurons. Each run reads a TOML config (configs/default.toml documents every key),
/// trains on MNIST on a CPU backend or on a GPU through wgpu, and appends one row to
/// results/runs.csv.
///
/// Exit codes: 0 ok, 1 a run failed or diverged, 2 a usage or config error.
#[derive(Debug, Parser)]
#[command(name = "harness", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train the network a config file describes and append its results.
    ///
    /// Writes one row to output.runs (results/runs.csv), one row per epoch to output.epochs
    /// (results/epochs.csv) and the trained model to output.models/<run_id>.<attempt>.bpk. Progress (a
    /// bar on a terminal, else one line per epoch) goes to stderr; the summary line to stdout.
    /// A run changed with --set is named after the changes (sigmoid_16x16_32x32_e5) unless
    /// --set name=... names it. The training state is written after every epoch beside
    /// output.runs (output.checkpoints): a run that was killed resumes from it, to the same
    /// rows an uninterrupted run records.
    Run {
        /// The config file (TOML), e.g. configs/sigmoid_16x16.toml.
        config: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
        /// Print only errors and the final summary line.
        #[arg(long, short)]
        quiet: bool,
        /// Start from epoch 0 even if the run was interrupted: its checkpoint is removed.
        #[arg(long)]
        restart: bool,
    },
    /// Run an experiment's points (grid, random search, successive halving): resumable,
    /// parallel, shardable.
    ///
    /// Points whose run_id already has a row with status ok or diverged in the results file are
    /// skipped, so rerunning the same command after a crash completes the rest. Each point runs
    /// in its own process, from the settings the sweep read (an experiment or base config
    /// changed while it runs stops it, exit 2). --set applies to every point and names it; a
    /// --set of a key the grid, the search or an extra point varies is refused. Prints a summary naming the best point (by validation accuracy when
    /// the runs hold images out); exits 1 if a run failed.
    Sweep {
        /// The experiment file, e.g. experiments/ci.toml.
        experiment: PathBuf,
        /// List the points (run_id, name, what varies, done or pending) and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run N points at once, each in its own process, the CPU threads split between them.
        #[arg(long, short, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        jobs: u16,
        /// Run only the K-th of N disjoint slices of the points (default: from a Slurm job
        /// array's SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT or _MIN/_MAX, else all).
        #[arg(long, value_name = "K/N", value_parser = parse_shard)]
        shard: Option<Shard>,
        /// With [halving]: run only rung R (0-based), whose points are chosen from the results
        /// of rung R-1 in the runs file (one Slurm array or CI matrix per rung, merged between
        /// rungs); with [tpe], `--wave W`: only wave W, suggested from the results of the waves
        /// before it. Default: every rung (wave) in turn.
        #[arg(long, value_name = "R", visible_alias = "wave")]
        rung: Option<u32>,
        /// With [halving] or [tpe]: the runs file holding the earlier rungs' (waves') results,
        /// when the shards write their own files (default: output.runs).
        #[arg(long, value_name = "RUNS_CSV")]
        select_from: Option<PathBuf>,
        /// Also rerun points whose run stands as failed (every attempt so far failed).
        #[arg(long)]
        retry_failed: bool,
        /// Rerun every point, even those already recorded.
        #[arg(long)]
        force: bool,
        /// Start interrupted points from epoch 0, not from their checkpoints (which are
        /// removed).
        #[arg(long)]
        restart: bool,
        /// Start no new point after the first failure.
        #[arg(long)]
        fail_fast: bool,
        /// Exit 1 unless every point of the sweep (or shard) ends with status ok.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Merge results files from several shards into one: every attempt once, headers checked.
    ///
    /// An output that already exists and is not among the inputs is merged into (its rows are
    /// kept, first), never replaced; an output that is among the inputs is rewritten with the
    /// union. Rows of one attempt that differ between files are an error naming the attempt.
    Merge {
        /// runs.csv files (or epochs.csv files) to merge, in order.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The merged file: created, or merged into when it exists.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Convert results files written by harness 0.1 (format 1) to this format, in place.
    ///
    /// Keeps every row and value; fills what format 1 did not record with what it meant (no
    /// validation images, the last epoch kept). The originals stay beside the files as
    /// <name>.format1.csv.
    Upgrade {
        /// The runs file, e.g. results/runs.csv.
        runs: PathBuf,
        /// Its epochs file (default: beside the runs file, named as harness names it:
        /// epochs.csv for runs.csv, epochs-3.csv for runs-3.csv).
        epochs: Option<PathBuf>,
        /// Convert the runs file alone, when its epochs file is lost.
        #[arg(long, conflicts_with = "epochs")]
        runs_only: bool,
    },
    /// Draw charts of a runs file as SVG and PNG: accuracy against parameters and against
    /// training time (one series per activation), learning curves from the epochs file, and a
    /// search's progress (the best accuracy so far against trials; --compare adds others).
    Plot {
        /// The runs file.
        #[arg(default_value = "results/runs.csv")]
        runs: PathBuf,
        /// The epochs file (default: beside the runs file: epochs.csv for runs.csv, a shard's
        /// epochs-3.csv for runs-3.csv).
        #[arg(long)]
        epochs: Option<PathBuf>,
        /// Folder for the charts.
        #[arg(long, short, default_value = "results/plots")]
        output: PathBuf,
        /// Image size in pixels, WIDTHxHEIGHT.
        #[arg(long, default_value = "800x600", value_parser = parse_size)]
        size: (u32, u32),
        /// Learning curves of these run ids, comma-separated (default: the first 8 ok runs).
        #[arg(long = "runs", value_delimiter = ',', value_name = "ID,ID")]
        run_ids: Vec<String>,
        /// Learning curves of the runs whose column has this value, e.g. activation=relu.
        #[arg(long, value_name = "COLUMN=VALUE", value_parser = parse_filter)]
        filter: Vec<(String, String)>,
        /// Other searches' runs files, comma-separated: a line each in search_progress (the
        /// best validation accuracy so far against trials), named by their folders.
        #[arg(long, value_delimiter = ',', value_name = "RUNS_CSV,RUNS_CSV")]
        compare: Vec<PathBuf>,
    },
    /// Look inside a trained network: the first layer's weights as 28x28 pictures (green
    /// positive, red negative), deeper layers as heatmaps, and the confusion matrix on the
    /// test set.
    ///
    /// Writes weights_layer1.png (the video's picture), weights_layer<k>.png for deeper layers,
    /// confusion.csv and confusion.png (true digit against predicted), per_class.csv (each
    /// digit's accuracy), wrong.png (the most confidently wrong test images) and, with --image,
    /// activations_<image>.png (every layer's activations for one image).
    Inspect {
        /// A run id from the runs file, or a model file results/models/<run_id>.<attempt>.bpk.
        target: String,
        /// The runs file holding the run's row (its architecture).
        #[arg(long, default_value = "results/runs.csv")]
        runs: PathBuf,
        /// The folder of saved models.
        #[arg(long, default_value = "results/models")]
        models: PathBuf,
        /// Output folder (default: results/inspect/<run_id>).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Also follow one image through the network: a test image index, or a PNG/JPEG file.
        #[arg(long, value_name = "N|FILE")]
        image: Option<String>,
    },
    /// Ask a trained network what digit an image shows (PNG or JPEG, any size).
    ///
    /// Each image becomes a 28x28 MNIST-style picture: a dark-on-light image is inverted, the
    /// digit scaled into 20x20 and centred by its mass. Prints the ten output activations and
    /// the chosen digit.
    Predict {
        /// A run id from the runs file, or a model file results/models/<run_id>.<attempt>.bpk.
        target: String,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// The runs file holding the run's row (its architecture).
        #[arg(long, default_value = "results/runs.csv")]
        runs: PathBuf,
        /// The folder of saved models.
        #[arg(long, default_value = "results/models")]
        models: PathBuf,
        /// Never invert images (they already show a light digit on a dark background).
        #[arg(long)]
        no_invert: bool,
        /// One JSON object per image.
        #[arg(long)]
        json: bool,
    },
    /// Write a trained network in a format other tools load: safetensors (NumPy, PyTorch) or
    /// ONNX (ONNX Runtime).
    ///
    /// safetensors holds the tensors of a PyTorch nn.Sequential of Linear layers and
    /// activations (keys 0.weight, 0.bias, 2.weight, ...; weights [out, in]), strict
    /// load_state_dict loads them, and its metadata holds the architecture (widths,
    /// activations, output, input scaling). ONNX (opset 17) is the whole network: input
    /// "pixels" [N, 784] in [0, 1], output "digits" [N, 10], the output function included.
    /// README "Export" shows how to load both. An existing file is replaced only with --force.
    Export {
        /// A run id from the runs file, or a model file results/models/<run_id>.<attempt>.bpk.
        target: String,
        /// The format (default: the one -o's name ends in, else safetensors).
        #[arg(long, short)]
        format: Option<crate::views::export::Format>,
        /// The file to write, or a folder to write it into (an existing one, or a path ending
        /// in /; default: results/exports/<run_id>.<format>).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
        /// The runs file holding the run's row (its architecture and model checksum).
        #[arg(long, default_value = "results/runs.csv")]
        runs: PathBuf,
        /// The folder of saved models.
        #[arg(long, default_value = "results/models")]
        models: PathBuf,
    },
    /// Summarise a runs file as a Markdown table, grouped over seeds, best accuracy first; or,
    /// with --html, as one self-contained HTML page to open in a browser.
    ///
    /// Each run counts once (the latest row that did not fail stands for it). Each group (by
    /// default: every setting but the seed, of which the table shows those that differ) shows
    /// its number of ok runs, the mean and sample standard deviation of the accuracy it is
    /// ranked by (validation when the runs held images out, else test), the mean test
    /// accuracy, the parameter count and the mean run time.
    ///
    /// --html writes one file that opens from disk with no network: the runs table (sortable,
    /// filterable), accuracy charts, parallel coordinates over the settings that vary, learning
    /// curves of the runs ticked, each run's detail with weight pictures of the best saved
    /// models, and two runs side by side.
    Report {
        /// The runs file.
        #[arg(default_value = "results/runs.csv")]
        runs: PathBuf,
        /// Columns to group by, comma-separated, e.g. shape,activation (default: every setting
        /// but the seed).
        #[arg(long, value_delimiter = ',')]
        group_by: Vec<String>,
        /// Write the table (or the page) to this file instead of printing it (--html: default
        /// report.html beside the runs file).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write an HTML page instead of the Markdown table.
        #[arg(long)]
        html: bool,
        /// The epochs file, for learning curves (--html; default: epochs.csv beside the runs
        /// file).
        #[arg(long, requires = "html")]
        epochs: Option<PathBuf>,
        /// The folder of saved models, for weight pictures (--html; default: models/ beside the
        /// runs file).
        #[arg(long, requires = "html")]
        models: Option<PathBuf>,
        /// Embed weight pictures of at most N runs, the best by accuracy (--html).
        #[arg(long, value_name = "N", default_value_t = crate::views::html::DEFAULT_PICTURES, requires = "html")]
        pictures: usize,
        /// Instead of the table: which settings mattered, each varying setting's importance for
        /// the validation metric (PED-ANOVA, as Optuna's get_param_importances computes it).
        #[arg(long, conflicts_with_all = ["html", "group_by"])]
        importance: bool,
        /// The metric --importance ranks runs by: val_accuracy or val_loss.
        #[arg(long, default_value = "val_accuracy", requires = "importance")]
        metric: String,
        /// --importance as JSON (the method, the metric, each setting's domain and importance).
        #[arg(long, requires = "importance")]
        json: bool,
    },
    /// Watch runs in a browser while they train: the --html page, served and kept up to date.
    ///
    /// Serves on http://127.0.0.1:6070/ the page `report --html` writes, for a runs file or a
    /// folder of them (every runs*.csv, as sharded sweeps leave them), and updates it about
    /// every second: new runs appear, a running run shows its epochs so far and its learning
    /// curve growing, and the sweep's progress with an estimate of the time left. Sorting,
    /// filters, ticked runs and an open detail stay as they are. It only reads; it listens on
    /// this machine only unless --host says otherwise.
    Serve {
        /// A runs file, or a folder whose runs*.csv files are read together.
        #[arg(default_value = "results")]
        source: PathBuf,
        /// The port to listen on (0: any free port; the URL is printed).
        #[arg(long, default_value_t = crate::views::serve::DEFAULT_PORT)]
        port: u16,
        /// The address to listen on. Anything but 127.0.0.1 or ::1 lets other machines read
        /// the runs (there is no login): harness warns.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Also answer requests naming this host (a machine's name others reach it by, with
        /// --host 0.0.0.0); repeatable. Requests naming any other host are refused (DNS
        /// rebinding).
        #[arg(long, value_name = "NAME")]
        allow_host: Vec<String>,
        /// Open the page in the desktop's browser (where there is one; else the URL is printed,
        /// as always).
        #[arg(long)]
        open: bool,
    },
    /// Measure training speed on a fixed matrix of configs (see BENCHMARKS.md).
    ///
    /// Prints, per config and backend: seconds per epoch (median of the measured epochs after
    /// one warm-up epoch, training steps only), samples per second, achieved GFLOP/s and its
    /// fraction of the backend's measured peak. `faithful` is configs/sigmoid_16x16.toml end to
    /// end. Numbers vary with the machine's load: compare rows of one run, not across runs.
    Bench {
        /// Configs to run, comma-separated: sigmoid_b10, relu_b64, wide128_b128, wide800_b128,
        /// faithful, and gpu1024_b1024 (784-1024-1024-10 at batch 1024, for GPUs).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "sigmoid_b10,relu_b64,wide128_b128,wide800_b128,faithful"
        )]
        configs: Vec<String>,
        /// Backends to run them on, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "cpu")]
        backends: Vec<BackendName>,
        /// Measured epochs per config, after one warm-up epoch.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
        epochs: u16,
        /// One JSON object per row instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Run one point of an experiment (what `harness sweep` starts in each worker process).
    ///
    /// The point's resolved settings come on stdin as a config file, exactly as the sweep
    /// read them; the worker trains them only if they make RUN_ID, and records the run only
    /// if the experiment (and its base config) still hold it when training ends.
    #[command(hide = true)]
    Worker {
        /// The experiment file the point comes from.
        experiment: PathBuf,
        /// The run the settings on stdin must make.
        run_id: String,
        #[arg(long)]
        rung: u32,
        /// The rung's budget of epochs, when the schedule spans more (a rung below the last).
        #[arg(long)]
        budget: Option<usize>,
        /// The experiment's base config file, when it has one.
        #[arg(long)]
        base: Option<PathBuf>,
        /// The SHA-256 of the experiment's and the base config's text as the sweep read them.
        #[arg(long)]
        sources: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        force: bool,
        #[arg(long)]
        restart: bool,
    },
    /// Validate config files: print the resolved settings, parameter count and run_id; train
    /// nothing.
    Check {
        /// One or more config files.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
}

/// Changes to a config given on the command line.
#[derive(Debug, Args)]
pub struct Overrides {
    /// The backend (overrides the config's `backend`; the run_id depends on it).
    #[arg(long)]
    pub backend: Option<BackendName>,
    /// Override a config key: --set train.learning_rate=0.5, --set 'model.hidden=[32,32]'.
    ///
    /// Keys are dotted paths into the config; values are TOML (a bare word is a string).
    /// Repeat for several keys.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl Overrides {
    /// The `--set` list, with `--backend` as one more override.
    pub fn assignments(&self) -> Vec<String> {
        let mut assignments = self.set.clone();
        if let Some(backend) = self.backend {
            assignments.push(format!("backend={}", backend.name()));
        }
        assignments
    }
}

fn parse_size(value: &str) -> Result<(u32, u32), String> {
    value
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .filter(|&(w, h): &(u32, u32)| (100..=10_000).contains(&w) && (100..=10_000).contains(&h))
        .ok_or_else(|| {
            format!("\"{value}\" is not a size WIDTHxHEIGHT between 100 and 10000, e.g. 800x600")
        })
}

fn parse_filter(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("\"{value}\" is not COLUMN=VALUE, e.g. activation=relu"))
}

fn parse_shard(value: &str) -> Result<Shard, String> {
    Shard::parse(value)
}
