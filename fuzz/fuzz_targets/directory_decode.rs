//! The directory-node decoder: any bytes either decode to a node that re-encodes to exactly those bytes (the
//! encoding is canonical), or are refused with an error; never a panic, never unbounded memory.
#![no_main]

use hstore_store::Directory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(directory) = Directory::decode(data) {
        assert_eq!(directory.encode(), data, "a decoded node must re-encode to its bytes");
    }
});
