//! The call memo behind [`PluginContainer::cache_func`] and
//! [`PluginContainer::cache_func_with`]: each distinct (function, JSON input) pair runs once and
//! its output bytes are kept for the container's lifetime. The public names say "cache"
//! (`cache_func`, `clear_cache`) and stay; inside the crate this store is the *memo*, so that
//! "cache" means the plugin store and "compiled-module cache" the wasmtime code cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::error::ContainerError;
use super::{PluginContainer, lock};

/// One stored output of [`PluginContainer::cache_func_with`].
#[derive(Default)]
pub(super) struct MemoSlot {
    pub(super) output: OnceLock<Arc<[u8]>>,
    /// Held while the output is computed, so that concurrent misses compute it once.
    pub(super) compute: Mutex<()>,
}

/// function name -> input bytes -> slot (nested so that a lookup borrows `&str` and `&[u8]`).
pub(super) type Memo = HashMap<String, HashMap<Vec<u8>, Arc<MemoSlot>>>;

impl PluginContainer {
    /// Drops every output stored by [`cache_func`](Self::cache_func) and
    /// [`cache_func_with`](Self::cache_func_with).
    pub fn clear_cache(&self) {
        self.inner
            .memo
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The memoized output of `function` for `input`, computing it on a miss.
    pub(super) fn memoized_bytes(
        &self,
        function: &str,
        input: &[u8],
    ) -> Result<Arc<[u8]>, ContainerError> {
        let slot = {
            let memo = self
                .inner
                .memo
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match memo.get(function).and_then(|outputs| outputs.get(input)) {
                Some(slot) => match slot.output.get() {
                    Some(output) => return Ok(Arc::clone(output)),
                    None => Arc::clone(slot),
                },
                None => {
                    drop(memo);
                    let mut memo = self
                        .inner
                        .memo
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    Arc::clone(
                        memo.entry(function.to_string())
                            .or_default()
                            .entry(input.to_vec())
                            .or_default(),
                    )
                }
            }
        };
        let _computing = lock(&slot.compute);
        if let Some(output) = slot.output.get() {
            return Ok(Arc::clone(output));
        }
        match self.call_bytes(function, input) {
            Ok(output) => {
                let output: Arc<[u8]> = output.into();
                Ok(Arc::clone(slot.output.get_or_init(|| output)))
            }
            Err(error) => {
                self.forget_failed(function, input, &slot);
                Err(error)
            }
        }
    }

    /// Drops the empty slot of a failed computation from the memo, unless another caller
    /// is waiting on it (that caller computes it next), so that failing inputs and missing
    /// function names do not pile up in a long-running host.
    pub(super) fn forget_failed(&self, function: &str, input: &[u8], slot: &Arc<MemoSlot>) {
        let mut memo = self
            .inner
            .memo
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(outputs) = memo.get_mut(function) else {
            return;
        };
        // Clones of a slot are only made under the map's lock: the count is stable here.
        // One reference is the map's, one is `slot`.
        let unused = outputs
            .get(input)
            .is_some_and(|entry| Arc::ptr_eq(entry, slot) && Arc::strong_count(slot) == 2);
        if unused {
            outputs.remove(input);
            if outputs.is_empty() {
                memo.remove(function);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn memo_entries(&self) -> usize {
        self.inner
            .memo
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(HashMap::len)
            .sum()
    }
}
