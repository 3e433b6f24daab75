//! The archive unpacker: any bytes, as each format, unpack or are refused; nothing is ever written outside the
//! destination (checked by unpacking inside a fresh directory and finding nothing beside it afterwards).
#![no_main]

use hstore_fetchers::archive::{ArchiveFormat, UnpackOptions, unpack};
use libfuzzer_sys::fuzz_target;

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
    };
    let _ = unpack(&source, format, &dest, &options);
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
