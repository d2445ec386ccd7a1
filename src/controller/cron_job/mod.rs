//! CronJobSpec controller parts: [`builder`] turns a CronJobSpec into the owned `batch/v1`
//! CronJob (pure, no I/O); reconciling it with the cluster is not wired yet.

pub mod builder;
