//! `warpgate fetch`.

use super::{Failure, GlobalArgs, Outcome, Output};

/// Arguments of `warpgate fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {}

/// Runs `warpgate fetch`: every locked plugin into the cache, verified, without API calls.
pub async fn run(
    global: &GlobalArgs,
    _args: FetchArgs,
    output: &Output,
) -> Result<Outcome, Failure> {
    let config = global.load_config()?;
    let lockfile = warpgate::lock::read_locked(&config, "`warpgate fetch`")?;
    let fetcher = global.fetcher_for(output, &config)?;
    let fetched = warpgate::source::Sources::new(config.root(), &fetcher)
        .materialize_all(&lockfile)
        .await?;
    let count = fetched.len();
    output.status(
        "Fetched",
        format!(
            "{} into `{}`",
            super::output::plugin_count(count),
            fetcher.cache().root().display()
        ),
    );
    Ok(Outcome::Success)
}
