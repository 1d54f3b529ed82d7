//! `harness report`: a Markdown table of a runs file, grouped over seeds.
//!
//! Rows with status ok are grouped by the chosen columns (by default every setting but the
//! seed); each group shows its number of runs, the mean and sample standard deviation of test
//! accuracy, the parameter count and the mean run time, best accuracy first. Reads any runs file
//! with the needed columns, whichever harness version wrote it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::error::user_error;

/// The columns grouped by default: every setting that is not the seed.
pub const DEFAULT_GROUP_BY: &str = "dataset,backend,hidden,activation,output,init,loss,optimizer,learning_rate,momentum,weight_decay,batch_size,epochs";

/// Columns the report reads besides the grouping ones.
const NEEDED: [&str; 4] = ["status", "test_accuracy", "params", "total_seconds"];

/// One group's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The values of the grouping columns.
    pub key: Vec<String>,
    pub runs: usize,
    pub mean_accuracy: f64,
    /// Sample standard deviation (n - 1); `None` for a single run.
    pub sd_accuracy: Option<f64>,
    pub params: String,
    pub mean_seconds: f64,
}

/// Groups the ok rows of `path` by `group_by`; also returns how many rows were not ok.
pub fn groups(path: &Path, group_by: &[String]) -> Result<(Vec<Group>, usize)> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| user_error(format!("cannot read runs file {}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| user_error(format!("{}: {e}", path.display())))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            user_error(format!(
                "{} has no column \"{name}\"{}; its columns are: {}",
                path.display(),
                crate::error::suggestion(name, headers.iter()),
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let keys: Vec<usize> = group_by
        .iter()
        .map(|name| column(name))
        .collect::<Result<_>>()?;
    let [status, accuracy, params, seconds] = NEEDED.map(column);
    let (status, accuracy, params, seconds) = (status?, accuracy?, params?, seconds?);

    let mut grouped: BTreeMap<Vec<String>, Vec<(f64, String, f64)>> = BTreeMap::new();
    let mut not_ok = 0;
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| user_error(format!("{}: {e}", path.display())))?;
        if &record[status] != "ok" {
            not_ok += 1;
            continue;
        }
        let number = |index: usize| {
            record[index].parse::<f64>().map_err(|_| {
                user_error(format!(
                    "{} line {}: {} = \"{}\" is not a number",
                    path.display(),
                    line + 2,
                    &headers[index],
                    &record[index]
                ))
            })
        };
        let key = keys.iter().map(|&i| record[i].to_string()).collect();
        grouped.entry(key).or_default().push((
            number(accuracy)?,
            record[params].to_string(),
            number(seconds)?,
        ));
    }

    let mut groups: Vec<Group> = grouped
        .into_iter()
        .map(|(key, runs)| {
            let n = runs.len() as f64;
            let mean = runs.iter().map(|r| r.0).sum::<f64>() / n;
            let sd = (runs.len() > 1).then(|| {
                (runs.iter().map(|r| (r.0 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            });
            Group {
                key,
                runs: runs.len(),
                mean_accuracy: mean,
                sd_accuracy: sd,
                params: runs[0].1.clone(),
                mean_seconds: runs.iter().map(|r| r.2).sum::<f64>() / n,
            }
        })
        .collect();
    groups.sort_by(|a, b| b.mean_accuracy.total_cmp(&a.mean_accuracy));
    Ok((groups, not_ok))
}

/// The report as Markdown.
pub fn markdown(path: &Path, group_by: &[String]) -> Result<String> {
    let (groups, not_ok) = groups(path, group_by)?;
    let mut out = String::new();
    writeln!(
        out,
        "| {} | runs | test accuracy (mean ± sd) | params | mean seconds |",
        group_by.join(" | ")
    )?;
    writeln!(out, "|{}---|---|---|---|", "---|".repeat(group_by.len()))?;
    for group in &groups {
        let sd = group
            .sd_accuracy
            .map_or("-".to_string(), |sd| format!("{sd:.4}"));
        writeln!(
            out,
            "| {} | {} | {:.4} ± {sd} | {} | {:.1} |",
            group.key.join(" | "),
            group.runs,
            group.mean_accuracy,
            group.params,
            group.mean_seconds
        )?;
    }
    writeln!(
        out,
        "\n{} groups of {} ok runs from {}{}.",
        groups.len(),
        groups.iter().map(|g| g.runs).sum::<usize>(),
        path.display(),
        if not_ok > 0 {
            format!("; {not_ok} diverged or failed runs left out")
        } else {
            String::new()
        }
    )?;
    Ok(out)
}
