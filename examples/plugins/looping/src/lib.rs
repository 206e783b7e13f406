//! `looping`: never returns, to test call timeouts.

use extism_pdk::*;

/// Spins forever; only a host-side timeout (epoch interruption) stops it.
#[plugin_fn]
pub fn spin() -> FnResult<()> {
    let mut counter: u64 = 0;
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
    }
}
