//! The lockfile parser: any bytes parse or are refused; a parsed lockfile serializes and parses back to itself.
#![no_main]

use std::path::Path;

use hstore_fetchers::lockfile::Lockfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(lockfile) = Lockfile::from_slice(data, Path::new("fuzz.json")) {
        let again = Lockfile::from_slice(&lockfile.to_json(), Path::new("fuzz.json"))
            .expect("a parsed lockfile re-parses");
        assert_eq!(again.to_json(), lockfile.to_json());
    }
});
