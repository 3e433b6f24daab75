//! The bundle reader: any byte stream is imported or refused with an error, never a panic; the store it imported
//! into always verifies clean (a refused bundle leaves only complete, verified objects).
#![no_main]

use std::sync::OnceLock;

use hstore_store::Store;
use hstore_store::bundle::{ImportOptions, import};
use libfuzzer_sys::fuzz_target;

fn store_dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

fuzz_target!(|data: &[u8]| {
    let store = Store::open(store_dir().path()).expect("open store");
    let mut input = data;
    let _ = import(&store, &mut input, "fuzz", &ImportOptions::default());
    let report = store.verify(false).expect("verify runs");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
});
