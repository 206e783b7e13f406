//! Verifies the plugins pinned in `warpgate.lock` and embeds them (see `warpgate-build`).

fn main() {
    warpgate_build::vendor_or_exit();
}
