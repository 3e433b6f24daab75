//! The archive unpacker: any bytes, as each format, unpack or are refused; nothing is ever written outside the
//! destination (checked by unpacking inside a fresh directory and finding nothing beside it afterwards), and never
//! more file content than the cap (`--max-unpacked-size`, here 1 MiB, so a bomb in the corpus stays cheap).
#![no_main]

use hstore_fetchers::archive::{ArchiveFormat, MaxUnpackedSize, UnpackOptions, unpack};
use libfuzzer_sys::fuzz_target;

/// The cap every run unpacks under.
const CAP: u64 = 1 << 20;

const FORMATS: [ArchiveFormat; 5] = [
    ArchiveFormat::Tar,
    ArchiveFormat::TarGz,
    ArchiveFormat::TarXz,
    ArchiveFormat::TarZst,
    ArchiveFormat::Zip,
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, archive)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(*selector) % FORMATS.len()];
    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("archive");
    std::fs::write(&source, archive).expect("write archive");
    let dest = work.path().join("dest");
    let options = UnpackOptions {
        strip_components: usize::from(*selector >> 4) % 2,
        max_unpacked_size: MaxUnpackedSize::Bytes(CAP),
        origin: None,
    };
    if let Ok(report) = unpack(&source, format, &dest, &options) {
        assert!(report.bytes <= CAP, "unpacked {} bytes over the cap", report.bytes);
    }
    // Whatever the outcome, what is on disk stays under the cap.
    let mut on_disk = 0;
    let mut stack = vec![dest.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("entry");
            let metadata = std::fs::symlink_metadata(entry.path()).expect("lstat");
            if metadata.is_dir() {
                stack.push(entry.path());
            } else if metadata.is_file() {
                on_disk += metadata.len();
            }
        }
    }
    assert!(on_disk <= CAP, "{on_disk} bytes on disk over the cap");
    let mut beside: Vec<_> = std::fs::read_dir(work.path())
        .expect("list work dir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    beside.sort();
    assert!(
        beside.iter().all(|name| name == "archive" || name == "dest"),
        "the unpacker wrote outside its destination: {beside:?}"
    );
});
