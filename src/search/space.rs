//! A search space: each key's distribution, as `[random]` and `[tpe]` write them, and the
//! generator each trial's draw of a key comes from.
//!
//! Both strategies share it: a `[tpe]` search's first trials are the draws a `[random]` search of
//! the same seed makes, as Optuna's TPESampler starts with its RandomSampler's.

use anyhow::Result;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};

use crate::error::user_error;

/// One key's distribution.
#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    Uniform(f64, f64),
    LogUniform(f64, f64),
    Int(i64, i64),
    Choice(Vec<toml::Value>),
}

/// The distribution kinds, as a file names them.
pub const KINDS: [&str; 4] = ["uniform", "log_uniform", "int", "choice"];

impl Distribution {
    /// Parses `{ uniform = [low, high] }` and the like, for key `key` of table `section`.
    pub fn parse(
        section: &str,
        key: &str,
        value: &toml::Value,
        origin: &str,
    ) -> Result<Distribution> {
        let bad = |what: &str| {
            user_error(format!(
                "{origin}: {section}.{key} {what}; write one of {{ uniform = [low, high] }}, \
                 {{ log_uniform = [low, high] }}, {{ int = [low, high] }} or \
                 {{ choice = [a, b, ...] }}"
            ))
        };
        let table = value.as_table().ok_or_else(|| bad("is not a table"))?;
        if table.len() != 1 {
            return Err(bad("must name exactly one distribution"));
        }
        let (kind, arguments) = table.iter().next().expect("one entry");
        let pair = |integers: bool| -> Result<(f64, f64)> {
            let items = arguments
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| bad(&format!("{kind} needs a list of two numbers [low, high]")))?;
            let number = |v: &toml::Value| match v {
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::Float(f) if !integers && f.is_finite() => Some(*f),
                _ => None,
            };
            let (Some(low), Some(high)) = (number(&items[0]), number(&items[1])) else {
                return Err(bad(&format!(
                    "{kind} needs {} [low, high]",
                    if integers {
                        "two whole numbers"
                    } else {
                        "two numbers"
                    }
                )));
            };
            if low > high {
                return Err(bad(&format!("{kind} has low {low} above high {high}")));
            }
            Ok((low, high))
        };
        match kind.as_str() {
            "uniform" => pair(false).map(|(a, b)| Distribution::Uniform(a, b)),
            "log_uniform" => {
                let (a, b) = pair(false)?;
                if a <= 0.0 {
                    return Err(bad("log_uniform needs low > 0"));
                }
                Ok(Distribution::LogUniform(a, b))
            }
            "int" => {
                // Whole numbers as they are written: through f64 they would lose digits.
                let items = arguments
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| bad("int needs a list of two whole numbers [low, high]"))?;
                match (items[0].as_integer(), items[1].as_integer()) {
                    (Some(low), Some(high)) if low <= high => Ok(Distribution::Int(low, high)),
                    (Some(low), Some(high)) => {
                        Err(bad(&format!("int has low {low} above high {high}")))
                    }
                    _ => Err(bad("int needs two whole numbers [low, high]")),
                }
            }
            "choice" => match arguments.as_array() {
                Some(items) if !items.is_empty() => Ok(Distribution::Choice(items.clone())),
                _ => Err(bad("choice needs a non-empty list of values")),
            },
            other => Err(bad(&format!("names an unknown distribution \"{other}\""))),
        }
    }

    /// Whether the distribution has a single value (a range `[a, a]`, a one-value choice).
    pub fn is_single(&self) -> bool {
        match self {
            Distribution::Uniform(a, b) | Distribution::LogUniform(a, b) => a == b,
            Distribution::Int(a, b) => a == b,
            Distribution::Choice(items) => items.len() == 1,
        }
    }

    /// A draw, always inside the range as written. Floats are rounded to 4 significant
    /// digits where that stays inside it (so that a point can be typed back with --set), else
    /// to as many digits as it takes.
    pub fn draw(&self, rng: &mut Xoshiro256PlusPlus) -> toml::Value {
        match self {
            Distribution::Uniform(a, b) => {
                // a + (b - a) u overflows for ranges wider than f64's largest number.
                let u: f64 = rng.random();
                let x = (a * (1.0 - u) + b * u).clamp(*a, *b);
                toml::Value::Float(round_within(x, *a, *b))
            }
            Distribution::LogUniform(a, b) => {
                let u: f64 = rng.random();
                let (low, high) = (a.ln(), b.ln());
                let x = (low * (1.0 - u) + high * u).exp().clamp(*a, *b);
                toml::Value::Float(round_within(x, *a, *b))
            }
            Distribution::Int(a, b) => toml::Value::Integer(rng.random_range(*a..=*b)),
            Distribution::Choice(items) => items[rng.random_range(0..items.len())].clone(),
        }
    }

    /// A value of this distribution as a number: the value itself for a range, the position
    /// in the list for a choice (Optuna's "internal representation"). `None` for a value the
    /// distribution does not hold.
    pub fn internal(&self, value: &toml::Value) -> Option<f64> {
        match (self, value) {
            (Distribution::Choice(items), value) => items
                .iter()
                .position(|item| item == value)
                .map(|i| i as f64),
            (Distribution::Int(..), toml::Value::Integer(i)) => Some(*i as f64),
            (_, toml::Value::Float(x)) => Some(*x),
            (_, toml::Value::Integer(i)) => Some(*i as f64),
            _ => None,
        }
    }

    /// The value of internal representation `x` ([`Distribution::internal`]), rounded as a
    /// draw is, inside the range.
    pub fn external(&self, x: f64) -> toml::Value {
        match self {
            Distribution::Uniform(a, b) | Distribution::LogUniform(a, b) => {
                toml::Value::Float(round_within(x.clamp(*a, *b), *a, *b))
            }
            Distribution::Int(a, b) => toml::Value::Integer((x.round() as i64).clamp(*a, *b)),
            Distribution::Choice(items) => {
                items[(x.round().max(0.0) as usize).min(items.len() - 1)].clone()
            }
        }
    }
}

/// `x` with the fewest significant digits that keep it inside `[low, high]`, from 4 more than
/// the range needs to tell its ends apart (so that a narrow range such as [0.999, 0.99999]
/// gives distinct draws, not a handful of 4-digit values); `x` itself when even 17 digits do
/// not (it is inside: it was clamped there).
pub fn round_within(x: f64, low: f64, high: f64) -> f64 {
    let scale = low.abs().max(high.abs()) / (high - low);
    let extra = if scale.is_finite() && scale > 1.0 {
        (scale.log10().ceil() as usize).min(13)
    } else {
        0
    };
    (3 + extra..17)
        .filter_map(|digits| format!("{x:.digits$e}").parse::<f64>().ok())
        .find(|rounded| (low..=high).contains(rounded))
        .unwrap_or(x)
}

/// The generator of one key's draw in one trial: seeded by the experiment's seed, the trial
/// and the key, so that draws do not depend on the other keys or on the order of the file.
pub fn trial_rng(seed: i64, trial: usize, key: &str) -> Xoshiro256PlusPlus {
    let digest = Sha256::digest(format!("{seed}/{trial}/{key}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    Xoshiro256PlusPlus::seed_from_u64(u64::from_le_bytes(bytes))
}

/// A search table (`[random]`, `[tpe]`) read: its trials, its seed, each key's distribution
/// (keys sorted, so the file's order does not matter), and the strategy's own settings.
pub struct Space {
    pub trials: usize,
    pub seed: i64,
    pub keys: Vec<(String, Distribution)>,
}

/// Reads search table `section`: `trials`, `seed`, and a distribution per key; a key for which
/// `setting` returns true is the strategy's own (it has read it).
pub fn parse(
    section: &str,
    table: &toml::Table,
    origin: &dyn Fn(&str) -> String,
    setting: &mut dyn FnMut(&str, &toml::Value, &str) -> Result<bool>,
) -> Result<Space> {
    let mut trials = None;
    let mut seed = 0;
    let mut keys = Vec::new();
    for (key, value) in leaves(table) {
        let place = origin(&format!("{section}.{key}"));
        match key.as_str() {
            "trials" => {
                trials = Some(value.as_integer().filter(|&n| n >= 1).ok_or_else(|| {
                    user_error(format!(
                        "{place}: {section}.trials must be a whole number of at least 1"
                    ))
                })? as usize);
            }
            "seed" => {
                seed = value.as_integer().filter(|&n| n >= 0).ok_or_else(|| {
                    user_error(format!(
                        "{place}: {section}.seed must be a whole number of at least 0"
                    ))
                })?;
            }
            _ if setting(&key, &value, &place)? => {}
            _ => keys.push((
                key.clone(),
                Distribution::parse(section, &key, &value, &place)?,
            )),
        }
    }
    let trials = trials.ok_or_else(|| {
        user_error(format!(
            "{}: [{section}] needs trials = N, the number of draws",
            origin(section)
        ))
    })?;
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Space { trials, seed, keys })
}

/// The leaves of a search table: like the experiment's dotted keys, but a table holding
/// anything but tables (a distribution, `{ uniform = [0, 1] }`) is a leaf.
fn leaves(table: &toml::Table) -> Vec<(String, toml::Value)> {
    super::experiment::leaves_where(table, "", &|inner| {
        !inner.keys().any(|k| KINDS.contains(&k.as_str()))
            && inner.values().all(toml::Value::is_table)
    })
}
