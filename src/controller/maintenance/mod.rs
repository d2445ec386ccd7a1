//! MaintenanceWindows in the cluster: the calendar the other kinds consult
//! ([`MaintenanceIndex`]) and the window lifecycle with the effects a window applies itself.

pub mod ics;
pub mod index;
pub mod selector;

pub use index::{Coverage, Effects, IndexedWindow, MaintenanceIndex};
