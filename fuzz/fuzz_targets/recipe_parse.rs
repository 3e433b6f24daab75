//! The recipe parser: any text parses or is refused with an error naming the file; never a panic.
#![no_main]

use std::path::Path;

use hstore_fetchers::recipe::Recipe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Recipe::parse(text, Path::new("/fuzz/recipes/fuzz.toml"));
    }
});
