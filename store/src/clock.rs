//! The wall clock hstore reads: the stat cache's racy window, the package index snapshot time (`exclude_newer`),
//! a build's start and end. One hook moves it: the CLI may set an offset once at start
//! (`HSTORE_TEST_CLOCK_OFFSET=SECONDS`), so that the integration tests let time pass without sleeping (a file
//! written a moment ago is "older than the racy window" two simulated seconds later). Nothing else sets it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Seconds added to the system clock.
static OFFSET_SECONDS: AtomicU64 = AtomicU64::new(0);

/// Moves this process's clock `offset` ahead of the system clock (see the module docs).
pub fn set_offset(offset: Duration) {
    OFFSET_SECONDS.store(offset.as_secs(), Ordering::Relaxed);
}

/// The current time, as hstore sees it.
pub fn now() -> SystemTime {
    SystemTime::now() + Duration::from_secs(OFFSET_SECONDS.load(Ordering::Relaxed))
}
