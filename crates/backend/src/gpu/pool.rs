//! Buffers kept from one call to the next. A live page asks for the same work
//! again and again: both sides' boundaries (256 KB written and read back at
//! the page's 128 x 128, 4 MB at 512 x 512) and loss surfaces (3.7 MB of
//! parameter vectors for 51 x 51 points of the reference net). Creating,
//! zeroing and freeing those buffers on every call is pure overhead, and on
//! the H100 the 512 x 512 boundary grew twice as fast as its work.

use std::sync::Mutex;

/// At most this many idle buffers, and this many bytes of them, are kept.
const KEEP_BUFFERS: usize = 8;
const KEEP_BYTES: u64 = 64 << 20;

/// Idle buffers, reused by exact size and usage (a page asks for the same sizes
/// frame after frame). A buffer taken out is not shared, so concurrent calls
/// (the browser runs several at once) never write into the same one.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    idle: Mutex<Vec<wgpu::Buffer>>,
}

impl BufferPool {
    /// An idle buffer of exactly `size` bytes and `usage`, or a new one. Its
    /// contents are whatever the last user left.
    pub fn take(&self, device: &wgpu::Device, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let mut idle = self.idle.lock().expect("buffer pool");
        match idle.iter().position(|b| b.size() == size && b.usage() == usage) {
            Some(i) => idle.remove(i),
            None => device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            }),
        }
    }

    /// Keeps `buffer` for a later `take`, dropping the oldest idle ones beyond the limits.
    pub fn give_back(&self, buffer: wgpu::Buffer) {
        let mut idle = self.idle.lock().expect("buffer pool");
        idle.push(buffer);
        while idle.len() > KEEP_BUFFERS || idle.iter().map(|b| b.size()).sum::<u64>() > KEEP_BYTES {
            idle.remove(0);
        }
    }

    #[cfg(all(test, not(target_arch = "wasm32")))]
    fn idle_sizes(&self) -> Vec<u64> {
        self.idle.lock().unwrap().iter().map(|b| b.size()).collect()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::gpu::{block_on, GpuContext};

    #[test]
    fn buffers_are_reused_by_size_and_usage_and_the_pool_stays_bounded() {
        let Ok(ctx) = block_on(GpuContext::new()) else {
            eprintln!("NOTICE: no GPU adapter, pool test skipped");
            return;
        };
        let pool = BufferPool::default();
        let storage = wgpu::BufferUsages::STORAGE;
        let a = pool.take(&ctx.device, "a", 256, storage);
        let id = a.clone();
        pool.give_back(a);
        // Another size or usage makes a new buffer; the same size gets the idle one back.
        let other = pool.take(&ctx.device, "b", 512, storage);
        assert_ne!(other, id);
        let mapped = pool.take(&ctx.device, "c", 256, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        assert_ne!(mapped, id);
        assert_eq!(pool.take(&ctx.device, "d", 256, storage), id);
        assert!(pool.idle_sizes().is_empty());
        // At most KEEP_BUFFERS idle, oldest dropped first.
        for i in 0..KEEP_BUFFERS + 3 {
            pool.give_back(pool_buffer(&ctx, 4 * (i as u64 + 1)));
        }
        assert_eq!(pool.idle_sizes(), (4..KEEP_BUFFERS + 4).map(|i| 4 * i as u64).collect::<Vec<_>>());
        // At most KEEP_BYTES idle: a huge buffer pushes the rest out.
        pool.give_back(pool_buffer(&ctx, KEEP_BYTES - 8));
        assert_eq!(pool.idle_sizes(), vec![KEEP_BYTES - 8]);
    }

    fn pool_buffer(ctx: &GpuContext, size: u64) -> wgpu::Buffer {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    }
}
