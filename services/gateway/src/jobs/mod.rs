//! Durable jobs on Temporal: a job is a workflow ([`workflow`]) whose stage calls are
//! activities ([`activities`]) that any gateway replica may run.

pub mod activities;
pub mod clients;
pub mod executor;
pub mod view;
pub mod wire;
pub mod workflow;
