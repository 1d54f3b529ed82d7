//! The search stage: experiment files expanded into points (grid, random search, extra points,
//! exclusions, successive halving: [`experiment`]), and `harness sweep`, which runs them in
//! worker processes, resumably and in shards ([`sweep`]).

pub mod experiment;
pub mod sweep;
