//! Assembles a Debian base from a directory of `.deb` files and prints what it made, with the time it took:
//! `cargo run --release -p hstore-fetchers --example assemble_base -- DEBS_DIR DEST`. A measuring tool for
//! ARCHITECTURE §11, not part of hstore.

#![expect(clippy::print_stdout, reason = "an example prints its measurement")]

use std::path::PathBuf;
use std::time::Instant;

use hstore_fetchers::debian::base::{BaseOptions, PackageLabel, assemble_base};
use hstore_fetchers::debian::deb::read_control;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(debs), Some(dest)) = (args.next(), args.next()) else {
        return Err("usage: assemble_base DEBS_DIR DEST".into());
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(debs)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|extension| extension == "deb"));
    let mut packages = Vec::new();
    for file in &files {
        let control = read_control(file)?;
        packages.push((
            PackageLabel::new(control.package, control.version),
            file.as_path(),
        ));
    }
    let start = Instant::now();
    let report = assemble_base(&packages, dest.as_ref(), &BaseOptions::default())?;
    let elapsed = start.elapsed();
    println!("{report:#?}");
    println!(
        "{} packages, {} files, {} directories, {} symlinks, {} bytes ({} MiB) in {:.2} s",
        report.packages.len(),
        report.files,
        report.directories,
        report.symlinks,
        report.bytes,
        report.bytes >> 20,
        elapsed.as_secs_f64()
    );
    Ok(())
}
