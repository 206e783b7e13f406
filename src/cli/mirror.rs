//! `warpgate mirror push`.

use warpgate::oci::mirror::Pushed;

use super::{CommandError, Failure, GlobalArgs, Outcome, Output};

/// Arguments of `warpgate mirror`.
#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    #[command(subcommand)]
    command: MirrorCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MirrorCommand {
    /// Copy every locked plugin (any source) into the mirror, addressed by its sha256;
    /// plugins the mirror already has are not uploaded again.
    Push {
        /// The mirror: `registry://HOST[:PORT]/NAMESPACE` (default: `WARPGATE_MIRROR`, else
        /// the config's `mirror`).
        mirror: Option<String>,
    },
}

/// Runs `warpgate mirror push`.
pub async fn run(
    global: &GlobalArgs,
    args: MirrorArgs,
    output: &Output,
) -> Result<Outcome, Failure> {
    let MirrorCommand::Push { mirror } = args.command;
    let config = global.load_config()?;
    let mirror = match mirror {
        Some(text) => warpgate::oci::mirror::parse(&text).map_err(|reason| {
            CommandError::new(
                reason,
                "name a repository, e.g. `warpgate mirror push registry://registry.example.com/team/plugins`",
            )
        })?,
        None => warpgate::oci::mirror::for_config(&config)?.ok_or_else(|| {
            CommandError::new(
                "no mirror given",
                format!(
                    "run `warpgate mirror push registry://HOST/NAMESPACE`, or set `{}` or the config's `mirror`",
                    warpgate::env::WARPGATE_MIRROR
                ),
            )
        })?,
    };
    let lockfile = warpgate::lock::read_locked(&config, "`warpgate mirror push`")?;
    // The bytes come from the cache or the plugins' origins, not from the mirror being filled.
    let fetcher = global.fetcher(output)?;
    let pushed = warpgate::oci::mirror::push(&config, &lockfile, &fetcher, &mirror).await?;
    let uploaded = pushed
        .iter()
        .filter(|(_, pushed)| matches!(pushed, Pushed::Uploaded { .. }))
        .count();
    output.status(
        "Mirrored",
        format!(
            "{} to `{mirror}` ({uploaded} uploaded, {} already there)",
            super::output::plugin_count(pushed.len()),
            pushed.len() - uploaded
        ),
    );
    Ok(Outcome::Success)
}
