//! glibc's malloc tuned for large activations.
//!
//! libtorch takes every CPU tensor from `posix_memalign`. glibc serves a block above its mmap
//! threshold (32 MiB at most) with a fresh `mmap` and unmaps it on free, so each large
//! activation of a diffusion UNet or VAE is faulted in and zeroed by the kernel again, op
//! after op: 15% of an SD 1.5 VAE decode on CPU (perf: `clear_page_erms`,
//! `exc_page_fault`), as much in PyTorch eager as here.
//!
//! [`keep_freed_memory`] makes glibc serve every block from its heap and keep freed memory
//! for reuse. The price is that the process keeps its peak heap: in the SD 1.5 VAE benchmark
//! the peak RSS grew from 1.4 to 2.0 GiB, and memory freed after a peak is not given back.
//! It suits a process whose model runs repeatedly on activations of similar sizes: a
//! keyframe, decoder or interpolation worker, and the Piper voice of the tts service, whose
//! vocoder allocates multi-megabyte activations per sentence (0.94 -> 0.82 of onnxruntime's
//! time on one machine, README Performance).

/// Turns the tuning on for the whole process (any thread, any time; it affects later
/// allocations). Returns whether the allocator accepted it: always false off glibc.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; glibc takes its own lock.
        unsafe {
            // no mmap'd blocks: all come from the heap (a thread arena too small for one
            // falls back to the main arena)
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                // give the heap's top back to the kernel only when 2 GiB of it are free
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
                // grow the heap in 256 MiB steps
                && libc::mallopt(libc::M_TOP_PAD, 256 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings_and_large_tensors_still_work() {
        assert!(super::keep_freed_memory());
        // 64 MiB, above any mmap threshold: now from the heap, and reused after a free
        for _ in 0..3 {
            let t = tch::Tensor::ones([16 << 20], (tch::Kind::Float, tch::Device::Cpu));
            assert_eq!(t.sum(tch::Kind::Double).double_value(&[]), (16 << 20) as f64);
        }
    }
}
