//! `warpgate publish`.

use std::path::PathBuf;

use warpgate::locator::PluginLocator;

use super::{CommandError, Failure, GlobalArgs, Outcome, Output};

/// Arguments of `warpgate publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The `.wasm` file to publish.
    pub file: PathBuf,
    /// Where: `registry://HOST[:PORT]/NAMESPACE/IMAGE:TAG`.
    pub target: String,
    /// Where the plugin's source lives (the `org.opencontainers.image.source` annotation).
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    /// The version annotation (`org.opencontainers.image.version`; default: the tag).
    #[arg(long = "annotate-version", value_name = "VERSION")]
    pub version: Option<String>,
}

/// Runs `warpgate publish`: pushes the file as an OCI artifact and prints the manifest
/// digest on stdout.
pub async fn run(
    global: &GlobalArgs,
    args: PublishArgs,
    output: &Output,
) -> Result<Outcome, Failure> {
    let target = match args.target.parse::<PluginLocator>()? {
        PluginLocator::Registry(target) => target,
        other => {
            let image = args.file.file_stem().map_or_else(
                || "plugin".into(),
                |stem| stem.to_string_lossy().replace('_', "-"),
            );
            return Err(CommandError::new(
                format!(
                    "cannot publish to `{other}`: the target must be a `registry://HOST/NAMESPACE/IMAGE:TAG` locator"
                ),
                format!(
                    "e.g. `warpgate publish {} registry://ghcr.io/acme/{image}:1.0.0`",
                    args.file.display()
                ),
            )
            .into());
        }
    };
    let fetcher = global.fetcher(output)?;
    let digest = warpgate::oci::mirror::publish(
        &fetcher,
        &args.file,
        &target,
        args.source.as_deref(),
        args.version.as_deref(),
    )
    .await?;
    output.status(
        "Published",
        format!("`{}` as `{target}@{digest}`", args.file.display()),
    );
    println!("{digest}");
    Ok(Outcome::Success)
}
