//! The requirements parser (issue 20, attack 3): any text parses or is refused, never panics; what it accepts renders
//! to text that holds no requirements-file syntax (no option word, `$`, `#`, `\`, control or non-ASCII character)
//! and parses back to the same requirements.
#![no_main]

use hstore_fetchers::requirements::input::{Origin, Requirements};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Origin::File {
        file: "fuzz:requirements.txt",
    };
    let Ok(requirements) = Requirements::parse(&[(origin, text)]) else {
        return;
    };
    let rendering = requirements.render();
    for line in rendering.lines() {
        assert!(
            line.starts_with(|c: char| c.is_ascii_alphanumeric()),
            "rendered line `{line}` does not start with a name"
        );
        assert!(
            line.chars().all(|c| c.is_ascii_graphic() || c == ' ')
                && !line.contains(['$', '#', '\\', '\'']),
            "rendered line `{line}` holds requirements-file syntax"
        );
        let words: Vec<&str> = line.split(' ').collect();
        assert!(
            words
                .iter()
                .filter(|word| word.starts_with('-'))
                .all(|word| word.starts_with("--hash=sha256:")),
            "rendered line `{line}` holds an option other than --hash"
        );
    }
    let again =
        Requirements::parse(&[(origin, rendering.as_str())]).expect("hstore's rendering parses");
    assert_eq!(
        again, requirements,
        "the rendering `{rendering}` parses differently"
    );
});
