//! The record stage: the results files and everything that writes or reads them whole. Rows
//! and their reader ([`results`]), the commit protocol that makes a run's rows land together
//! or not at all ([`journal`]), `harness merge` ([`merge`]) and `harness upgrade`
//! ([`upgrade`]), a trained network found and checked beside its row ([`saved`]), the one check
//! of every command's outputs against its inputs ([`claims`]) and the locks of the runs being
//! trained ([`running`]), with the live feed beside them that `harness serve` shows
//! ([`live`]), which is not the record.

pub mod results;
pub mod journal;
pub mod claims;
pub mod running;
pub mod live;
pub mod merge;
pub mod upgrade;
pub mod saved;
