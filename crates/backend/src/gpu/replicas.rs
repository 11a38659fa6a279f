//! Kernel 3 (train.wgsl): R independent replicas of one architecture trained
//! side by side, each with its own initial parameters, batch order, SGD
//! hyperparameters, learning-rate schedule and SAM radius. Parameters, momentum
//! and gradients stay on the GPU; only metrics (or, on request, the
//! parameters) are read back.
//!
//! Minibatches: every replica draws exactly the batches a CPU `train::Run` with
//! the same seed draws (`BatchOrder`, including the short last batch of an
//! epoch). The CPU generates the indices, a chunk of steps at a time, and
//! uploads them with the learning rates of those steps, so a replica follows
//! the CPU trajectory up to f32 rounding.
//!
//! Several training sets (`ReplicaTrainer::on_sets`, a grid study's data draws):
//! the sets are uploaded one after another as one set, and each replica's batch
//! indices are shifted to its own set's rows. The kernels never see the
//! difference, so a replica's arithmetic is the same as in a trainer of its
//! set alone, and one batch of dispatches trains every draw.

use crate::gpu::context::{dispatch, groups_for};
use crate::gpu::evaluate::{GpuDataset, LossAccuracy};
use crate::gpu::readback::WorkDone;
use crate::gpu::shape::{check_supported, to_f32, Words};
use crate::gpu::{GpuContext, GpuError};
use flatminima_core::data::Dataset;
use flatminima_core::model::Mlp;
use flatminima_core::optim::OptimizerConfig;
use flatminima_core::schedule::Schedule;
use flatminima_core::study::Replica;
use flatminima_core::train::BatchOrder;

/// Batch-plan entries (steps x replicas x batch size) uploaded at once: 16 MiB.
const PLAN_WORDS: usize = 4 << 20;

/// The CPU half of a replica: what decides its batches and learning rates.
struct Plan {
    batches: BatchOrder,
    schedule: Schedule,
    base_lr: f64,
    /// Where the replica's training set starts among the uploaded rows.
    first_row: usize,
}

/// R replicas on the GPU. `train` only submits work; `metrics`, `evaluate` and
/// `params` wait for it and read results back.
pub struct ReplicaTrainer {
    ctx: GpuContext,
    mlp: Mlp,
    plans: Vec<Plan>,
    batch_size: usize,
    /// Steps per uploaded plan chunk.
    chunk: usize,
    steps: usize,
    any_sam: bool,
    /// Every training set, one after another.
    train_data: GpuDataset,
    /// How many training sets `train_data` holds (metrics need exactly one).
    sets: usize,
    batch_index: wgpu::Buffer,
    batch_len: wgpu::Buffer,
    lrs: wgpu::Buffer,
    weights: wgpu::Buffer,
    step: wgpu::Buffer,
    groups: Groups,
}

/// Units of every level of `mlp` (inputs .. logits): one scratch region per batch slot.
fn level_total(mlp: &Mlp) -> usize {
    mlp.inputs + mlp.layers.iter().map(|l| l.fan_out).sum::<usize>()
}

/// One bind group per entry point (their layouts come from the shader).
struct Groups {
    forward_backward: wgpu::BindGroup,
    gradient: wgpu::BindGroup,
    sam_perturb: wgpu::BindGroup,
    sgd_step: wgpu::BindGroup,
    advance: wgpu::BindGroup,
}

impl ReplicaTrainer {
    /// Uploads everything. All replicas share `mlp`, the training set and the batch size.
    pub fn new(
        ctx: &GpuContext,
        mlp: &Mlp,
        train: &Dataset,
        batch_size: usize,
        replicas: &[Replica],
    ) -> Result<ReplicaTrainer, GpuError> {
        ReplicaTrainer::on_sets(ctx, mlp, &[(train, replicas)], batch_size)
    }

    /// [`ReplicaTrainer::new`] for groups of replicas, each group on its own
    /// training set (replicas in group order): one trainer for a grid study's
    /// data draws. Each replica trains exactly as in a trainer of its set
    /// alone. The sets must agree on the batch size (`batch_size`, or a set's
    /// size where that is smaller); [`ReplicaTrainer::metrics`] needs one set.
    pub fn on_sets(
        ctx: &GpuContext,
        mlp: &Mlp,
        sets: &[(&Dataset, &[Replica])],
        batch_size: usize,
    ) -> Result<ReplicaTrainer, GpuError> {
        ctx.check()?;
        check_supported(mlp)?;
        let replicas: Vec<(usize, &Replica)> =
            sets.iter().enumerate().flat_map(|(g, (_, reps))| reps.iter().map(move |r| (g, r))).collect();
        if replicas.is_empty() || sets.iter().any(|(set, _)| set.is_empty()) {
            return Err(GpuError::Unsupported("no replicas or no training points".into()));
        }
        // A set smaller than the batch shrinks it, as in `Run`: every set must give the same size.
        let batch_of = |set: &Dataset| batch_size.clamp(1, set.len());
        let batch_size = batch_of(sets[0].0);
        if let Some((set, _)) = sets.iter().find(|(set, _)| batch_of(set) != batch_size) {
            return Err(GpuError::Unsupported(format!(
                "training sets of {} and {} points give batches of different sizes",
                sets[0].0.len(),
                set.len()
            )));
        }
        if let Some((set, _)) = sets.iter().find(|(set, _)| set.classes != sets[0].0.classes) {
            return Err(GpuError::Unsupported(format!(
                "training sets of {} and {} classes",
                sets[0].0.classes, set.classes
            )));
        }
        let mut first_rows = Vec::with_capacity(sets.len());
        let mut all = Dataset { points: Vec::new(), labels: Vec::new(), classes: sets[0].0.classes };
        for (set, _) in sets {
            first_rows.push(all.len());
            all.points.extend_from_slice(&set.points);
            all.labels.extend_from_slice(&set.labels);
        }
        let (r, p) = (replicas.len(), mlp.num_params());
        let mut hypers = Words::new();
        let mut plans = Vec::with_capacity(r);
        let mut init = Vec::with_capacity(r * p);
        for (i, &(group, replica)) in replicas.iter().enumerate() {
            let train = sets[group].0;
            let OptimizerConfig::Sgd { lr, momentum, dampening, weight_decay, nesterov } = replica.side.optimizer
            else {
                return Err(GpuError::Unsupported(format!(
                    "replica {i} uses {}; the GPU trainer implements SGD (with SAM/ASAM)",
                    replica.side.optimizer.display_name()
                )));
            };
            if replica.init.len() != p {
                return Err(GpuError::Unsupported(format!(
                    "replica {i} has {} parameters, not {p}",
                    replica.init.len()
                )));
            }
            let (rho, sam) = match &replica.side.sam {
                None => (0.0, 0),
                Some(s) => (s.rho, if s.adaptive { 2 } else { 1 }),
            };
            hypers = hypers.f32(momentum).f32(dampening).f32(weight_decay).u32(nesterov.into()).f32(rho).u32(sam);
            init.extend(to_f32(&replica.init));
            plans.push(Plan {
                batches: BatchOrder::new(replica.seed, train.len(), batch_size),
                schedule: replica.side.schedule.clone(),
                base_lr: lr,
                first_row: first_rows[group],
            });
        }
        let level_total = level_total(mlp);
        let scratch_stride = ReplicaTrainer::scratch_floats(mlp, 1);
        let chunk = (PLAN_WORDS / (r * batch_size)).clamp(1, 1024);
        let config = Words::new()
            .shape(mlp)
            .usize(r)
            .usize(p)
            .usize(batch_size)
            .usize(scratch_stride)
            .usize(level_total)
            .f32(mlp.label_smoothing);

        let config = ctx.upload("train config", config.as_bytes())?;
        let hypers = ctx.upload("hyperparameters", hypers.as_bytes())?;
        let train_data = ctx.upload_dataset(&all)?;
        let batch_index = ctx.zeros("batch indices", chunk * r * batch_size)?;
        let batch_len = ctx.zeros("batch sizes", chunk * r)?;
        let lrs = ctx.zeros("learning rates", chunk * r)?;
        let weights = ctx.upload("weights", bytemuck::cast_slice(&init))?;
        let probe = ctx.upload("probe", bytemuck::cast_slice(&init))?;
        let grad = ctx.zeros("gradients", r * p)?;
        let momentum = ctx.zeros("momentum", r * p)?;
        let scratch = ctx.zeros("scratch", r * batch_size * scratch_stride)?;
        let step = ctx.zeros("step", 2)?;

        let k = &ctx.kernels;
        let (xs, ys) = (&train_data.xs, &train_data.ys);
        let groups = Groups {
            forward_backward: ctx.bind(
                &k.forward_backward,
                &[
                    (0, &config),
                    (2, xs),
                    (3, ys),
                    (4, &batch_index),
                    (5, &batch_len),
                    (8, &probe),
                    (11, &scratch),
                    (12, &step),
                ],
            ),
            gradient: ctx.bind(&k.gradient, &[(0, &config), (5, &batch_len), (9, &grad), (11, &scratch), (12, &step)]),
            sam_perturb: ctx
                .bind(&k.sam_perturb, &[(0, &config), (1, &hypers), (7, &weights), (8, &probe), (9, &grad)]),
            sgd_step: ctx.bind(
                &k.sgd_step,
                &[
                    (0, &config),
                    (1, &hypers),
                    (6, &lrs),
                    (7, &weights),
                    (8, &probe),
                    (9, &grad),
                    (10, &momentum),
                    (12, &step),
                ],
            ),
            advance: ctx.bind(&k.advance, &[(12, &step)]),
        };
        Ok(ReplicaTrainer {
            ctx: ctx.clone(),
            mlp: mlp.clone(),
            any_sam: replicas.iter().any(|(_, r)| r.side.sam.is_some()),
            sets: sets.len(),
            plans,
            batch_size,
            chunk,
            steps: 0,
            train_data,
            batch_index,
            batch_len,
            lrs,
            weights,
            step,
            groups,
        })
    }

    /// Floats of training scratch one replica needs at `batch_size`: per batch
    /// slot its activations, activation derivatives and deltas, one value per
    /// unit of every level (inputs .. logits).
    pub fn scratch_floats(mlp: &Mlp, batch_size: usize) -> usize {
        3 * level_total(mlp) * batch_size
    }

    /// Number of replicas in the batch.
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    /// True when the batch holds no replicas.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Sets the steps per submission (at least 1). The default is as many as
    /// 16 MiB of batch plan holds (at most 1024); fewer mean shorter pauses of
    /// the page between chunks.
    pub fn set_chunk_steps(&mut self, steps: usize) {
        self.chunk = steps.clamp(1, self.chunk.max(1));
    }

    /// Optimiser steps taken so far (the same for every replica).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Runs `steps` optimiser steps for every replica, a chunk of steps per
    /// submission, and returns once all but the last chunk are done (reading
    /// metrics waits for the rest). At most two chunks are ever queued, so a
    /// long study neither piles up plans in memory nor, in the browser, keeps
    /// the page from rendering between chunks. GPU errors surface in the next
    /// read.
    ///
    /// Replicas never stop: unlike `Run`, a diverging replica keeps stepping and
    /// its metrics show a non-finite or exploding loss.
    pub async fn train(&mut self, steps: usize) -> Result<(), GpuError> {
        self.ctx.check()?;
        let mut done = 0;
        let mut previous: Option<WorkDone> = None;
        while done < steps {
            let n = self.chunk.min(steps - done);
            self.upload_plan(n);
            let mut encoder =
                self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("train") });
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for _ in 0..n {
                    self.record_step(&mut pass)?;
                }
            }
            let submitted = WorkDone::after(&self.ctx.queue, self.ctx.queue.submit([encoder.finish()]));
            done += n;
            self.steps += n;
            // Plan the next chunk while the GPU runs this one.
            if let Some(earlier) = previous.replace(submitted) {
                earlier.wait(&self.ctx.device).await?;
                self.ctx.check()?;
            }
        }
        Ok(())
    }

    /// Mean loss and accuracy of every replica on the training set (of a
    /// trainer over one set: over several, each replica has its own).
    pub async fn metrics(&self) -> Result<LossAccuracy, GpuError> {
        if self.sets != 1 {
            return Err(GpuError::Unsupported(format!(
                "the training metrics of a trainer over {} training sets (evaluate each set instead)",
                self.sets
            )));
        }
        self.ctx.evaluate_vectors(&self.mlp, &self.weights, self.len(), &self.train_data, "metrics", |_| Ok(())).await
    }

    /// Mean loss and accuracy of every replica on another set (ID or OOD test).
    pub async fn evaluate(&self, data: &Dataset) -> Result<LossAccuracy, GpuError> {
        let data = self.ctx.upload_dataset(data)?;
        self.ctx.evaluate_vectors(&self.mlp, &self.weights, self.len(), &data, "evaluate", |_| Ok(())).await
    }

    /// Every replica's current parameters (f32 widened to f64).
    pub async fn params(&self) -> Result<Vec<Vec<f64>>, GpuError> {
        let p = self.mlp.num_params();
        let flat = self.ctx.run_and_read("params", self.len() * p, |_| Ok(self.weights.clone())).await?;
        Ok(flat.chunks_exact(p).map(|c| c.iter().map(|&v| v as f64).collect()).collect())
    }

    /// Writes the batches and learning rates of the next `n` steps, and points the
    /// GPU's step counter at the first of them.
    fn upload_plan(&mut self, n: usize) {
        let (r, b) = (self.len(), self.batch_size);
        let mut index = vec![0u32; n * r * b];
        let mut len = vec![0u32; n * r];
        let mut lrs = vec![0f32; n * r];
        for s in 0..n {
            for (i, plan) in self.plans.iter_mut().enumerate() {
                let at = s * r + i;
                let batch = plan.batches.next_batch();
                len[at] = batch.len() as u32;
                for (slot, &idx) in index[at * b..].iter_mut().zip(batch) {
                    *slot = (plan.first_row + idx) as u32;
                }
                lrs[at] = plan.schedule.lr_at(plan.base_lr, self.steps + s) as f32;
            }
        }
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.batch_index, 0, bytemuck::cast_slice(&index));
        queue.write_buffer(&self.batch_len, 0, bytemuck::cast_slice(&len));
        queue.write_buffer(&self.lrs, 0, bytemuck::cast_slice(&lrs));
        queue.write_buffer(&self.step, 0, bytemuck::cast_slice(&[0u32, self.steps as u32]));
    }

    /// One optimiser step for every replica: a gradient pass (two for SAM), the
    /// SGD update, and the step counter.
    fn record_step(&self, pass: &mut wgpu::ComputePass<'_>) -> Result<(), GpuError> {
        let k = &self.ctx.kernels;
        let g = &self.groups;
        let r = self.len();
        let per_param = groups_for(r * self.mlp.num_params());
        let per_sample = groups_for(r * self.batch_size);
        dispatch(pass, &k.forward_backward, &g.forward_backward, per_sample)?;
        dispatch(pass, &k.gradient, &g.gradient, per_param)?;
        if self.any_sam {
            dispatch(pass, &k.sam_perturb, &g.sam_perturb, r)?;
            dispatch(pass, &k.forward_backward, &g.forward_backward, per_sample)?;
            dispatch(pass, &k.gradient, &g.gradient, per_param)?;
        }
        dispatch(pass, &k.sgd_step, &g.sgd_step, per_param)?;
        dispatch(pass, &k.advance, &g.advance, 1)
    }
}
