//! The search stage: experiment files expanded into points ([`experiment`]: a grid, extra
//! points, exclusions, successive halving), the search strategies that draw them (each key's
//! distribution: [`space`]; blind draws or TPE's waves: [`tpe`]), which settings mattered
//! ([`importance`]), and `harness sweep`, which runs the points in worker processes, resumably
//! and in shards ([`sweep`]).

pub mod experiment;
pub mod importance;
pub mod space;
pub mod sweep;
pub mod tpe;
