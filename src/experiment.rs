//! Experiment files: a base config and a grid of values, expanded into run configs.
//!
//! ```toml
//! base = "../configs/relu_16x16.toml"   # or an inline [base] table with config keys
//! [grid]                                # every combination, in a stable order
//! "model.hidden" = [[16], [16, 16]]
//! "model.activation" = ["sigmoid", "relu"]
//! seed = [1, 2]
//! [[point]]                             # extra points, key = value
//! "model.hidden" = [128]
//! [[exclude]]                           # drop grid points that match every key here
//! "model.activation" = "sigmoid"
//! "model.hidden" = [16]
//! ```
//!
//! [`Experiment::points`] turns the file into [`Point`]s: ordinary validated [`Settings`] with a
//! run_id and a readable name built from what varies (`relu_16x16_s2`). Grid keys are sorted, so
//! the order, the names and the run_ids do not depend on the order of keys in the file. Every
//! key is checked against the config schema, and errors name the file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;
use toml::de::DeTable;

use crate::config::{self, Override, Settings, label, show};
use crate::error::user_error;

/// An experiment file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExperiment {
    /// The base config: a path relative to the experiment file, or inline config tables.
    base: Option<toml::Value>,
    #[serde(default)]
    grid: toml::Table,
    #[serde(default)]
    point: Vec<toml::Table>,
    #[serde(default)]
    exclude: Vec<toml::Table>,
}

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position in the whole sweep (0-based), stable across invocations.
    pub index: usize,
    pub run_id: String,
    /// What varies, e.g. `[("model.activation", "relu"), ("seed", "3")]`.
    pub varies: Vec<(String, String)>,
    pub settings: Settings,
}

/// An experiment file, read and checked.
pub struct Experiment {
    pub path: PathBuf,
    points: Vec<Point>,
}

impl Experiment {
    /// Reads an experiment file and expands it, applying `overrides` (`--set`) to every point.
    pub fn load(path: &Path, overrides: &[Override]) -> Result<Experiment> {
        let source = crate::input::read_text(path, "experiment", crate::input::TEXT_MAX)?;
        let raw: RawExperiment = toml::from_str(&source).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((0, 0), |span| line_column(&source, span.start));
            user_error(format!(
                "invalid experiment {}:{line}:{column}: {} (an experiment has base, [grid], \
                 [[point]] and [[exclude]])",
                path.display(),
                e.message().trim_end()
            ))
        })?;
        let spans = DeTable::parse(&source).ok();
        let origin = |key: &str| {
            let position = spans
                .as_ref()
                .and_then(|table| config::span_of(table.get_ref(), key))
                .map(|span| line_column(&source, span.start));
            match position {
                Some((line, column)) => format!("{}:{line}:{column}", path.display()),
                None => path.display().to_string(),
            }
        };

        // The base: a config file, or inline keys applied to an empty config.
        let (base_source, base_path, mut base_overrides) = match &raw.base {
            Some(toml::Value::String(file)) => {
                let base_path = path.parent().unwrap_or(Path::new(".")).join(file);
                let text =
                    crate::input::read_text(&base_path, "base config", crate::input::TEXT_MAX)
                        .map_err(|e| user_error(format!("{}: {e:#}", origin("base"))))?;
                (text, base_path, Vec::new())
            }
            Some(toml::Value::Table(table)) => {
                let changes = leaves(table, "")
                    .into_iter()
                    .map(|(key, value)| Override {
                        origin: origin(&format!("base.{key}")),
                        key,
                        value,
                    })
                    .collect();
                (String::new(), path.to_path_buf(), changes)
            }
            Some(_) => {
                return Err(user_error(format!(
                    "{}: base must be a path to a config file or a table of config keys",
                    origin("base")
                )));
            }
            None => (String::new(), path.to_path_buf(), Vec::new()),
        };
        base_overrides.extend(overrides.iter().cloned());
        // The base alone must be valid: its errors then point at the base file.
        config::parse(&base_source, &base_path, &base_overrides)?;

        // The grid: dotted keys (quoted, or as nested tables) mapping to lists of values.
        let mut grid: BTreeMap<String, Vec<toml::Value>> = BTreeMap::new();
        for (key, values) in leaves(&raw.grid, "") {
            let toml::Value::Array(values) = values else {
                return Err(user_error(format!(
                    "{}: grid.{key} must be a list of values to try, e.g. [1, 2, 3]",
                    origin(&format!("grid.{key}"))
                )));
            };
            if values.is_empty() {
                return Err(user_error(format!(
                    "{}: grid.{key} is an empty list: the sweep would have no points",
                    origin(&format!("grid.{key}"))
                )));
            }
            grid.insert(key, values);
        }
        let varying: Vec<&String> = grid
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, _)| k)
            .collect();

        // Each candidate: its changes, and whether all of them name it (extra points) or only
        // the keys that vary across the grid.
        let mut candidates: Vec<(Vec<Override>, bool)> = Vec::new();
        for combination in cartesian(&grid) {
            let excluded = raw.exclude.iter().any(|rule| {
                leaves(rule, "")
                    .iter()
                    .all(|(key, value)| combination.get(key) == Some(value))
            });
            if !excluded {
                let changes = combination
                    .into_iter()
                    .map(|(key, value)| Override {
                        origin: origin(&format!("grid.{key}")),
                        key,
                        value,
                    })
                    .collect();
                candidates.push((changes, false));
            }
        }
        for (i, extra) in raw.point.iter().enumerate() {
            let changes = leaves(extra, "")
                .into_iter()
                .map(|(key, value)| Override {
                    origin: origin(&format!("point[{i}].{key}")),
                    key,
                    value,
                })
                .collect();
            candidates.push((changes, true));
        }

        let mut points: Vec<Point> = Vec::new();
        for (changes, extra) in candidates {
            // Command-line overrides win over the grid.
            let mut all = base_overrides.clone();
            all.extend(changes.iter().cloned());
            all.extend(overrides.iter().cloned());
            let mut settings = config::parse(&base_source, &base_path, &all)?;
            settings.config = Some(path.to_path_buf());
            let naming: Vec<&Override> = changes
                .iter()
                .filter(|change| change.key != "name")
                .filter(|change| extra || varying.contains(&&change.key))
                .collect();
            let varies: Vec<(String, String)> = naming
                .iter()
                .map(|change| (change.key.clone(), show(&change.value)))
                .collect();
            let labels: Vec<String> = naming
                .iter()
                .map(|change| label(&change.key, &change.value))
                .collect();
            // A point that sets `name` keeps it; others are named after what varies.
            let named = changes.iter().any(|change| change.key == "name");
            if !labels.is_empty() && !named {
                // Without the shape in the labels ("s3"), keep the base's name in front.
                let shaped = naming.iter().any(|change| {
                    matches!(change.key.as_str(), "model.hidden" | "model.activation")
                });
                settings.name = if shaped {
                    labels.join("_")
                } else {
                    format!("{}_{}", settings.name, labels.join("_"))
                };
            }
            let run_id = settings.run_id(settings.backend);
            if points.iter().any(|point| point.run_id == run_id) {
                continue; // an extra point that repeats a grid point
            }
            points.push(Point {
                index: points.len(),
                run_id,
                varies,
                settings,
            });
        }
        if points.is_empty() {
            return Err(user_error(format!(
                "{}: the sweep has no points (every grid point is excluded)",
                path.display()
            )));
        }
        Ok(Experiment {
            path: path.to_path_buf(),
            points,
        })
    }

    /// Every point, in sweep order.
    pub fn points(&self) -> &[Point] {
        &self.points
    }
}

/// A `K/N` slice of a sweep: points whose index is K-1 modulo N (disjoint, and together the
/// whole sweep, with sizes that differ by at most one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` with 1 <= K <= N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let parsed = text.split_once('/').and_then(|(k, n)| {
            Some(Shard {
                index: k.trim().parse().ok()?,
                count: n.trim().parse().ok()?,
            })
        });
        match parsed {
            Some(shard) if shard.index >= 1 && shard.index <= shard.count => Ok(shard),
            _ => Err(format!(
                "\"{text}\" is not a shard K/N with 1 <= K <= N, e.g. 2/4"
            )),
        }
    }

    /// The shard of a Slurm job array task, from `SLURM_ARRAY_TASK_ID` and either
    /// `SLURM_ARRAY_TASK_COUNT` or `SLURM_ARRAY_TASK_MIN`/`_MAX`; `None` outside an array.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, String> {
        let number = |name: &str| -> Result<Option<usize>, String> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| format!("{name}={v} is not a number"))
                })
                .transpose()
        };
        let Some(id) = number("SLURM_ARRAY_TASK_ID")? else {
            return Ok(None);
        };
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0).min(id);
        let count = match (
            number("SLURM_ARRAY_TASK_COUNT")?,
            number("SLURM_ARRAY_TASK_MAX")?,
        ) {
            (Some(count), _) => count,
            (None, Some(max)) => max + 1 - min,
            (None, None) => {
                return Err(
                    "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor \
                            SLURM_ARRAY_TASK_MAX is"
                        .to_string(),
                );
            }
        };
        let shard = Shard {
            index: id - min + 1,
            count,
        };
        if shard.index > shard.count {
            return Err(format!(
                "Slurm array task {id} (min {min}, {count} tasks) is outside the array; use \
                 consecutive task ids, e.g. --array=1-{count}"
            ));
        }
        Ok(Some(shard))
    }

    /// Whether point `index` (0-based) belongs to this shard.
    pub fn contains(&self, index: usize) -> bool {
        index % self.count == self.index - 1
    }
}

/// The leaves of a table as dotted keys: recurses into tables, stops at other values.
fn leaves(table: &toml::Table, prefix: &str) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => out.extend(leaves(inner, &path)),
            other => out.push((path, other.clone())),
        }
    }
    out
}

/// Every combination of the grid's values, the first key (alphabetically) varying slowest.
fn cartesian(grid: &BTreeMap<String, Vec<toml::Value>>) -> Vec<BTreeMap<String, toml::Value>> {
    let mut combinations = vec![BTreeMap::new()];
    for (key, values) in grid {
        combinations = combinations
            .into_iter()
            .flat_map(|partial| {
                values.iter().map(move |value| {
                    let mut next = partial.clone();
                    next.insert(key.clone(), value.clone());
                    next
                })
            })
            .collect();
    }
    combinations
}

/// 1-based line and column of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const BASE: &str = "[model]\nhidden = [16]\nactivation = \"relu\"\noutput = \"softmax\"\n\
                        [train]\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 1e-3\n";

    fn names(experiment: &Experiment) -> Vec<String> {
        experiment
            .points()
            .iter()
            .map(|p| p.settings.name.clone())
            .collect()
    }

    #[test]
    fn grid_expands_in_a_stable_order_with_readable_names() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let a = write(
            dir.path(),
            "a.toml",
            "base = \"base.toml\"\n[grid]\nseed = [1, 2]\n\"model.hidden\" = [[16], [16, 16]]\n\
             \"model.activation\" = [\"sigmoid\", \"relu\"]\n\"train.epochs\" = [2]\n",
        );
        // The same grid, keys in another order and as nested tables.
        let b = write(
            dir.path(),
            "b.toml",
            "base = \"base.toml\"\n[grid]\ntrain.epochs = [2]\nmodel.activation = [\"sigmoid\", \"relu\"]\n\
             model.hidden = [[16], [16, 16]]\nseed = [1, 2]\n",
        );
        let a = Experiment::load(&a, &[]).unwrap();
        let b = Experiment::load(&b, &[]).unwrap();
        assert_eq!(a.points().len(), 8);
        assert_eq!(
            names(&a),
            [
                "sigmoid_16_s1",
                "sigmoid_16_s2",
                "sigmoid_16x16_s1",
                "sigmoid_16x16_s2",
                "relu_16_s1",
                "relu_16_s2",
                "relu_16x16_s1",
                "relu_16x16_s2"
            ]
        );
        assert_eq!(names(&a), names(&b));
        let ids = |e: &Experiment| {
            e.points()
                .iter()
                .map(|p| p.run_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
        let mut unique = ids(&a);
        unique.dedup();
        assert_eq!(unique.len(), 8, "run_ids are distinct");
        assert!(a.points().iter().all(|p| p.settings.train.epochs == 2));
        // Stable across invocations.
        let again = Experiment::load(&dir.path().join("a.toml"), &[]).unwrap();
        assert_eq!(ids(&again), ids(&a));
    }

    #[test]
    fn extra_points_and_exclusions() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let path = write(
            dir.path(),
            "e.toml",
            "base = \"base.toml\"\n[grid]\n\"model.hidden\" = [[16], [32]]\nseed = [1, 2]\n\
             [[exclude]]\n\"model.hidden\" = [32]\nseed = 2\n\
             [[point]]\n\"model.hidden\" = [128]\n\
             [[point]]\n\"model.hidden\" = [16]\nseed = 1\n",
        );
        let experiment = Experiment::load(&path, &[]).unwrap();
        // 4 grid points - 1 excluded + 1 new extra point (the second repeats a grid point).
        assert_eq!(names(&experiment), ["16_s1", "16_s2", "32_s1", "128"]);
    }

    #[test]
    fn inline_base_and_unknown_grid_key_errors() {
        let dir = tempfile::tempdir().unwrap();
        let inline = write(
            dir.path(),
            "inline.toml",
            "[base]\nmodel.hidden = [8]\ntrain.epochs = 1\n[grid]\nseed = [1, 2, 3]\n",
        );
        let experiment = Experiment::load(&inline, &[]).unwrap();
        assert_eq!(experiment.points().len(), 3);
        assert_eq!(experiment.points()[0].settings.model.hidden, vec![8]);
        // Only the seed varies: the base's name stays in front.
        assert_eq!(names(&experiment), ["inline_s1", "inline_s2", "inline_s3"]);

        let bad = write(
            dir.path(),
            "bad.toml",
            "[base]\nmodel.hidden = [8]\n[grid]\nseed = [1]\n\"model.activaton\" = [\"relu\"]\n",
        );
        let message = format!("{:#}", Experiment::load(&bad, &[]).err().unwrap());
        assert!(message.contains("bad.toml:5:"), "{message}");
        assert!(message.contains("activaton"), "{message}");

        let bad_value = write(
            dir.path(),
            "bad_value.toml",
            "[base]\nmodel.hidden = [8]\n[grid]\n\"model.activation\" = [\"relu\", \"sigmod\"]\n",
        );
        let message = format!("{:#}", Experiment::load(&bad_value, &[]).err().unwrap());
        assert!(message.contains("bad_value.toml:4:"), "{message}");
        assert!(message.contains("did you mean \"sigmoid\""), "{message}");
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_sweep() {
        let points = 10;
        let shards: Vec<Shard> = (1..=3)
            .map(|k| Shard::parse(&format!("{k}/3")).unwrap())
            .collect();
        for index in 0..points {
            assert_eq!(
                shards.iter().filter(|s| s.contains(index)).count(),
                1,
                "point {index}"
            );
        }
        assert!(Shard::parse("0/3").is_err());
        assert!(Shard::parse("4/3").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn slurm_array_variables_pick_the_shard() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_slurm(env(&[])), Ok(None));
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "0"),
                ("SLURM_ARRAY_TASK_COUNT", "4")
            ])),
            Ok(Some(Shard { index: 1, count: 4 }))
        );
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "3")
            ])),
            Ok(Some(Shard { index: 3, count: 3 }))
        );
        assert!(Shard::from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "1")])).is_err());
    }
}
