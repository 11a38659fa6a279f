//! Waiting for the GPU: reading buffers back (`map_async` wrapped in a
//! future) and waiting for submitted work. Natively we block in `Device::poll`
//! until the GPU is done; in the browser the future resolves from the event
//! loop (no blocking is possible there, and the page renders meanwhile).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::gpu::GpuError;

/// Usage of the buffers results are copied into for reading.
pub(crate) const STAGING: wgpu::BufferUsages = wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);

/// Bytes of a buffer of `len` f32/u32 words (never empty: WebGPU rejects zero-sized bindings).
pub(crate) fn word_bytes(len: usize) -> u64 {
    (len.max(1) * 4) as u64
}

/// Appends a copy of the first `len` f32s of `src` into `staging` (usage [`STAGING`],
/// at least [`word_bytes`] bytes).
pub(crate) fn stage(encoder: &mut wgpu::CommandEncoder, src: &wgpu::Buffer, staging: &wgpu::Buffer, len: usize) {
    encoder.copy_buffer_to_buffer(src, 0, staging, 0, word_bytes(len));
}

/// The f32s of a staged buffer, once the GPU has written them; `staging` is unmapped again on return.
pub(crate) async fn read_f32(device: &wgpu::Device, staging: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, GpuError> {
    let (sender, receiver) = oneshot();
    staging.slice(..).map_async(wgpu::MapMode::Read, sender);
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Failed(format!("waiting for the GPU: {e}")))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    receiver.await.map_err(|e| GpuError::Failed(format!("reading a result back: {e}")))?;
    let values = {
        let view = staging.get_mapped_range(..).map_err(|e| GpuError::Failed(format!("mapped range: {e}")))?;
        // One copy, of the `len` values only (a 512 x 512 boundary is 4 MB).
        bytemuck::pod_collect_to_vec::<u8, f32>(&view[..len * 4])
    };
    staging.unmap();
    Ok(values)
}

/// The completion of one queue submission, to wait for later (training waits
/// for chunk k while the GPU runs chunk k + 1, so it never queues more than two).
pub(crate) struct WorkDone {
    #[cfg(not(target_arch = "wasm32"))]
    index: wgpu::SubmissionIndex,
    #[cfg(target_arch = "wasm32")]
    receiver: Receiver<()>,
}

impl WorkDone {
    /// Call right after the submission that returned `index`.
    pub fn after(queue: &wgpu::Queue, index: wgpu::SubmissionIndex) -> WorkDone {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = queue;
            WorkDone { index }
        }
        #[cfg(target_arch = "wasm32")]
        {
            // The callback fires once everything submitted so far is done.
            let _ = index;
            let (sender, receiver) = oneshot();
            queue.on_submitted_work_done(move || sender(()));
            WorkDone { receiver }
        }
    }

    pub async fn wait(self, device: &wgpu::Device) -> Result<(), GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        device
            .poll(wgpu::PollType::Wait { submission_index: Some(self.index), timeout: None })
            .map(|_| ())
            .map_err(|e| GpuError::Failed(format!("waiting for the GPU: {e}")))?;
        #[cfg(target_arch = "wasm32")]
        {
            let _ = device;
            self.receiver.await;
        }
        Ok(())
    }
}

/// A one-value channel: the map callback sends, the future receives.
fn oneshot<T: Send + 'static>() -> (impl FnOnce(T) + Send + 'static, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    let sender = {
        let slot = slot.clone();
        move |value: T| {
            let mut s = slot.lock().expect("readback slot");
            s.value = Some(value);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    };
    (sender, Receiver { slot })
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Receiver<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Future for Receiver<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.slot.lock().expect("readback slot");
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
