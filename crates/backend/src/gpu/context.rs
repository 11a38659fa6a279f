//! The GPU connection (adapter, device, queue), the compiled kernels, and the
//! small helpers every kernel module uses to make buffers and dispatch work.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use crate::gpu::pool::BufferPool;
use crate::gpu::{readback, GpuError};

/// Workgroups per dispatch dimension that every WebGPU device accepts.
const MAX_GROUPS_PER_DIM: u32 = 65_535;
/// Threads per workgroup in every kernel (`WG` in the shaders).
pub(crate) const WORKGROUP: u32 = 64;
/// Buffers are capped here even where the device allows more, to stay a good
/// citizen in a browser tab.
const MAX_BUFFER_BYTES: u64 = 1 << 30;

const COMMON: &str = include_str!("shaders/common.wgsl");
const MLP_FORWARD: &str = include_str!("shaders/mlp_forward.wgsl");

/// The compiled compute pipelines, one per kernel entry point.
#[derive(Clone, Debug)]
pub(crate) struct Kernels {
    pub forward: wgpu::ComputePipeline,
    pub evaluate: wgpu::ComputePipeline,
    pub combine: wgpu::ComputePipeline,
    pub forward_backward: wgpu::ComputePipeline,
    pub gradient: wgpu::ComputePipeline,
    pub sam_perturb: wgpu::ComputePipeline,
    pub sgd_step: wgpu::ComputePipeline,
    pub advance: wgpu::ComputePipeline,
}

/// A device ready to run the kernels. Cheap to clone (handles only).
#[derive(Clone, Debug)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) kernels: Kernels,
    info: wgpu::AdapterInfo,
    /// The first error raised outside an error scope (e.g. by `ReplicaTrainer::train`),
    /// or a lost device; every later call reports it instead of computing garbage.
    broken: Arc<Mutex<Option<String>>>,
    /// Output and readback buffers kept between calls (see [`BufferPool`]).
    pool: Arc<BufferPool>,
}

impl GpuContext {
    /// Opens the best adapter (a discrete GPU before an integrated or software one)
    /// and compiles the kernels. `Err(GpuError::NoAdapter)` where there is no
    /// WebGPU (browser) or Vulkan (native) adapter at all.
    pub async fn new() -> Result<GpuContext, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let available = adapter.limits();
        // WebGPU's default limits (8 storage buffers per kernel is what train.wgsl
        // needs), with buffers as large as the adapter allows, up to 1 GiB.
        let required_limits = wgpu::Limits {
            max_storage_buffer_binding_size: available.max_storage_buffer_binding_size.min(MAX_BUFFER_BYTES),
            max_buffer_size: available.max_buffer_size.min(MAX_BUFFER_BYTES),
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("flatminima"),
                required_features: wgpu::Features::empty(),
                required_limits,
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;

        let broken = Arc::new(Mutex::new(None));
        let record = |broken: &Arc<Mutex<Option<String>>>, message: String| {
            let mut slot = broken.lock().expect("gpu error slot");
            slot.get_or_insert(message);
        };
        {
            let broken = broken.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| record(&broken, e.to_string())));
        }
        {
            let broken = broken.clone();
            device.set_device_lost_callback(move |reason, message| {
                record(&broken, format!("device lost ({reason:?}): {message}"));
            });
        }

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let kernels = Kernels::compile(&device);
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Failed(format!("compiling the kernels: {e}")));
        }
        Ok(GpuContext { device, queue, kernels, info, broken, pool: Arc::default() })
    }

    /// Adapter name, kind and backend, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) [Cpu, Vulkan]".
    pub fn description(&self) -> String {
        // Browsers hide the adapter's name.
        let name = if self.info.name.is_empty() { "unnamed adapter" } else { &self.info.name };
        format!("{name} [{:?}, {:?}]", self.info.device_type, self.info.backend)
    }

    /// The adapter's details as wgpu reports them (name, device type, backend).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// True for software adapters (lavapipe, SwiftShader): correct, but no faster than the CPU path.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// `Err` once any GPU error has happened on this device (then use the CPU backend).
    pub fn check(&self) -> Result<(), GpuError> {
        match self.broken.lock().expect("gpu error slot").as_ref() {
            Some(message) => Err(GpuError::Failed(message.clone())),
            None => Ok(()),
        }
    }

    /// Runs `encode` inside validation and out-of-memory error scopes, submits its
    /// commands, and reads back `len` f32s from the buffer it returns.
    pub(crate) async fn run_and_read(
        &self,
        label: &str,
        len: usize,
        encode: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<wgpu::Buffer, GpuError>,
    ) -> Result<Vec<f32>, GpuError> {
        self.check()?;
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        let staged = encode(&mut encoder).map(|out| {
            let staging = self.pool.take(&self.device, "readback", readback::word_bytes(len), readback::STAGING);
            readback::stage(&mut encoder, &out, &staging, len);
            staging
        });
        if staged.is_ok() {
            self.queue.submit([encoder.finish()]);
        }
        // Pop both scopes before awaiting either: in a browser other calls run while
        // this one awaits, and their scopes must not land between these two.
        let (validation, memory) = (validation.pop(), memory.pop());
        let errors = (validation.await, memory.await);
        let staging = staged?;
        if let Some(e) = errors.0.or(errors.1) {
            return Err(GpuError::Failed(format!("{label}: {e}")));
        }
        let values = readback::read_f32(&self.device, &staging, len).await?;
        // Only an unmapped buffer goes back (an error above drops it instead).
        self.pool.give_back(staging);
        self.check()?;
        Ok(values)
    }

    /// A read-only input buffer (never empty: WebGPU rejects zero-sized bindings).
    pub(crate) fn upload(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer, GpuError> {
        self.check_size(label, bytes.len() as u64)?;
        let padded;
        let contents = if bytes.is_empty() {
            padded = [0u8; 4];
            &padded[..]
        } else {
            bytes
        };
        // Not `create_buffer_init`: on a destroyed or lost device it panics (its mapped range is
        // invalid); `write_buffer` reports the error instead, and the next `check` sees it.
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: contents.len().next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT as usize) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, contents);
        Ok(buffer)
    }

    /// A zeroed buffer of `len` f32/u32 words that kernels write, kept for the
    /// caller's lifetime (e.g. a replica's weights).
    pub(crate) fn zeros(&self, label: &str, len: usize) -> Result<wgpu::Buffer, GpuError> {
        let size = readback::word_bytes(len);
        self.check_size(label, size)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: OUTPUT,
            mapped_at_creation: false,
        }))
    }

    /// A buffer of `len` words for one call's output, from the pool: its contents
    /// are stale, so only for outputs a kernel writes in full. It goes back to
    /// the pool when dropped.
    pub(crate) fn scratch(&self, label: &str, len: usize) -> Result<Scratch, GpuError> {
        let size = readback::word_bytes(len);
        self.check_size(label, size)?;
        let buffer = self.pool.take(&self.device, label, size, OUTPUT);
        Ok(Scratch { buffer: Some(buffer), pool: self.pool.clone() })
    }

    /// The largest storage buffer a kernel may bind, in bytes.
    pub(crate) fn max_binding_bytes(&self) -> u64 {
        self.device.limits().max_storage_buffer_binding_size
    }

    fn check_size(&self, label: &str, bytes: u64) -> Result<(), GpuError> {
        let max = self.max_binding_bytes();
        if bytes > max {
            return Err(GpuError::TooLarge(format!("{label} needs {bytes} bytes; the device allows {max} per buffer")));
        }
        Ok(())
    }

    /// A bind group for group 0 of `pipeline`, from (binding, buffer) pairs. The
    /// pipelines use layouts derived from their shaders, so the list must name
    /// exactly the bindings the entry point uses.
    pub(crate) fn bind(&self, pipeline: &wgpu::ComputePipeline, entries: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = entries
            .iter()
            .map(|&(binding, buffer)| wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }
}

/// Usage of the buffers kernels write (read back by copying, refilled by `write_buffer`).
const OUTPUT: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_DST).union(wgpu::BufferUsages::COPY_SRC);

/// A pooled output buffer of one call (see [`GpuContext::scratch`]).
pub(crate) struct Scratch {
    buffer: Option<wgpu::Buffer>,
    pool: Arc<BufferPool>,
}

impl std::ops::Deref for Scratch {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("scratch buffer")
    }
}

impl Drop for Scratch {
    // Safe even while submitted work still uses it: a later call's work is queued after it.
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.give_back(buffer);
        }
    }
}

/// Records a dispatch of `groups` workgroups, folded into two dimensions when
/// there are more than one dimension allows (the shaders unfold the index).
pub(crate) fn dispatch(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    groups: usize,
) -> Result<(), GpuError> {
    if groups == 0 {
        return Ok(());
    }
    let x = groups.min(MAX_GROUPS_PER_DIM as usize);
    let y = groups.div_ceil(x);
    if y > MAX_GROUPS_PER_DIM as usize {
        return Err(GpuError::TooLarge(format!("{groups} workgroups in one dispatch")));
    }
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind_group, &[]);
    pass.dispatch_workgroups(x as u32, y as u32, 1);
    Ok(())
}

/// Workgroups for one thread per item.
pub(crate) fn groups_for(items: usize) -> usize {
    items.div_ceil(WORKGROUP as usize)
}

impl Kernels {
    fn compile(device: &wgpu::Device) -> Kernels {
        let module = |name: &str, body: &str, with_forward: bool| {
            let prelude = if with_forward { format!("{COMMON}\n{MLP_FORWARD}") } else { COMMON.to_string() };
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(Cow::Owned(format!("{prelude}\n{body}"))),
            })
        };
        let forward = module("forward.wgsl", include_str!("shaders/forward.wgsl"), true);
        let evaluate = module("evaluate.wgsl", include_str!("shaders/evaluate.wgsl"), true);
        let combine = module("combine.wgsl", include_str!("shaders/combine.wgsl"), false);
        let train = module("train.wgsl", include_str!("shaders/train.wgsl"), false);
        let pipeline = |module: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        Kernels {
            forward: pipeline(&forward, "main"),
            evaluate: pipeline(&evaluate, "main"),
            combine: pipeline(&combine, "main"),
            forward_backward: pipeline(&train, "forward_backward"),
            gradient: pipeline(&train, "gradient"),
            sam_perturb: pipeline(&train, "sam_perturb"),
            sgd_step: pipeline(&train, "sgd_step"),
            advance: pipeline(&train, "advance"),
        }
    }
}
