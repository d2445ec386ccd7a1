//! MaintenanceWindows in the cluster: the calendar the other kinds consult
//! ([`MaintenanceIndex`]) and the window lifecycle with the effects a window applies itself.

mod apply;
pub mod effects;
pub mod error;
pub mod feed;
pub mod ics;
pub mod index;
pub mod lifecycle;
pub mod metrics;
pub mod notices;
pub mod plan;
mod progress;
pub mod selector;
pub mod sql;
pub mod state;
pub mod tasks;

pub use error::Error;
pub use index::{Coverage, Effects, IndexedWindow, MaintenanceIndex};
pub use lifecycle::{FINALIZER, Outcome, as_window};
pub use metrics::MaintenanceMetrics;
pub use state::MaintenanceWindows;
