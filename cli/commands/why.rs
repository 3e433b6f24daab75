//! `hstore why NAME|ADDRESS`: the chains from the lockfile's recipes to an artifact (`hstore_model::why`), or to a
//! store object inside one (found by walking the stored trees).

use std::io::{self, Write};

use anyhow::{Context, Result};
use hstore_fetchers::lockfile::{Artifact, Lockfile};
use hstore_model::artifact::Query;
use hstore_model::why::{Chain, why};
use hstore_store::{Digest, Store};

use crate::args::WhyArgs;
use crate::error::CliError;
use crate::printer::ExitStatus;
use crate::settings::GlobalSettings;

pub fn run(args: &WhyArgs, global: &GlobalSettings) -> Result<ExitStatus> {
    let lockfile = Lockfile::load(&args.lockfile)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let (found, searched_store) = if let Ok(address) = args.query.parse::<Digest>() {
        why_address(global, &lockfile, &address, &mut out)?
    } else {
        let chains = why(&lockfile, |artifact| matches_name(artifact, &args.query));
        render(&mut out, &chains, |_| None)?;
        (!chains.is_empty(), false)
    };
    out.flush().context("failed to write to stdout")?;
    if !found {
        return Err(CliError::NotInLockfile {
            query: args.query.clone(),
            lockfile: args.lockfile.clone(),
            searched_store,
        }
        .into());
    }
    Ok(ExitStatus::Success)
}

/// An address: the artifacts that are it, else those whose stored tree holds it (with the path inside). Returns
/// whether any chain was found, and whether the store was searched.
fn why_address(
    global: &GlobalSettings,
    lockfile: &Lockfile,
    address: &Digest,
    out: &mut impl Write,
) -> Result<(bool, bool)> {
    let direct = why(lockfile, |artifact| artifact.address() == *address);
    if !direct.is_empty() {
        render(out, &direct, |_| None)?;
        return Ok((true, false));
    }
    if !global
        .store
        .join(hstore_store::layout::VERSION_FILE)
        .exists()
    {
        return Ok((false, false));
    }
    let store = Store::open(&global.store)
        .with_context(|| format!("failed to open the store at `{}`", global.store.display()))?;
    let mut inside = std::collections::HashMap::new();
    for artifact in &lockfile.artifacts {
        if let Some(path) = store.find_in_tree(&artifact.address(), address)? {
            inside.insert(artifact.id().to_owned(), path);
        }
    }
    let chains = why(lockfile, |artifact| inside.contains_key(artifact.id()));
    render(out, &chains, |chain| {
        inside.get(&chain.artifact.id).cloned()
    })?;
    Ok((!chains.is_empty(), true))
}

/// Whether `query` names `artifact`: its lockfile id, or its name (`serde`, `serde@1.0.228`), or for git and URL
/// artifacts the repository's URL or last path segment (`InfiniCore`, `InfiniCore.git`).
fn matches_name(artifact: &Artifact, query: &str) -> bool {
    artifact.id() == query || artifact.kind_impl().answers_to(&Query::parse(query))
}

/// One line per chain: `top --source--> recipe --source--> kind package version (id)[:/path inside]`.
fn render(
    out: &mut impl Write,
    chains: &[Chain],
    inside: impl Fn(&Chain) -> Option<String>,
) -> io::Result<()> {
    for chain in chains {
        for (recipe, source) in &chain.steps {
            write!(out, "{recipe} --{source}--> ")?;
        }
        let artifact = &chain.artifact;
        write!(
            out,
            "{} {} {} ({})",
            artifact.kind, artifact.package, artifact.version, artifact.id
        )?;
        if let Some(path) = inside(chain) {
            write!(out, " at /{path}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
