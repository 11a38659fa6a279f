//! A training step allocates nothing once the run is warm (ARCHITECTURE.md:
//! "The training step does not allocate after the first step"). This binary
//! counts every allocation of the thread that asks, through its own global
//! allocator, around steps of `Run` (SGD, SAM, ASAM, Adam, RMSprop, AdamW, with
//! schedules, label smoothing, the short last batch of an epoch and the metric
//! logging that falls due inside `step`).
#![cfg(not(target_arch = "wasm32"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use flatminima::pair::Pair;
use flatminima::settings::config_from_settings;
use flatminima::train::Run;

struct Counting;

thread_local! {
    /// Allocations (alloc, alloc_zeroed, realloc) of this thread while counting; None when not.
    static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
}

// SAFETY: every call is passed to `System` unchanged; counting touches only a
// const-initialised thread-local Cell, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn count() {
    // try_with: the thread-local may already be gone while a thread shuts down.
    let _ = COUNT.try_with(|c| c.set(c.get().map(|n| n + 1)));
}

/// How many allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(Some(0)));
    f();
    COUNT.with(|c| c.replace(None)).expect("counting was on")
}

/// The invariant's wording: "after the first step". (Measured: the first step
/// allocates nothing either, since `Run::new` sizes every buffer when it logs step 0.)
const WARM_UP: usize = 1;
/// Several epochs of every case below, so the reshuffle and the short last batch are counted.
const STEPS: usize = 100;

/// Each case's settings, as the page and `--set` take them. Every case logs its
/// metrics every 7 steps, inside the counted steps.
const CASES: &[&[(&str, &str)]] = &[
    // the page's default pair: SGD with momentum vs SAM, batches of 32 of 200 points
    &[],
    // short last batch every epoch (50 = 3 x 16 + 2), GELU, label smoothing, 3 classes, Adam vs ASAM, cosine
    &[
        ("dataset", "blobs"),
        ("classes", "3"),
        ("points", "50"),
        ("hidden", "6,5"),
        ("activation", "gelu"),
        ("optimizer", "adam"),
        ("right", "asam"),
        ("schedule", "cosine"),
        ("label-smoothing", "0.1"),
        ("batch-size", "16"),
    ],
    // RMSprop with a step schedule, ReLU, deep; full batch
    &[
        ("optimizer", "rmsprop"),
        ("schedule", "step"),
        ("activation", "relu"),
        ("hidden", "8,8,8,8"),
        ("batch-size", "200"),
    ],
    // AdamW with warm-up, no hidden layer
    &[("optimizer", "adamw"), ("schedule", "warmup"), ("hidden", "none")],
    // dropout (masks drawn every step; SAM reuses them), short last batch
    &[("dropout", "0.3,0.1"), ("points", "50"), ("batch-size", "16")],
    // weight averages, a switch of optimiser inside the counted steps, per-side batch sizes
    &[
        ("average", "ema"),
        ("switch-at", "30"),
        ("switch-side", "both"),
        ("switch-to", "adam"),
        ("left-batch-size", "8"),
    ],
    &[("average", "swa"), ("average-start", "20"), ("switch-at", "50"), ("right-batch-size", "200")],
];

fn warm_pair(settings: &[(&str, &str)]) -> Pair {
    let (config, errors) = config_from_settings(settings.iter().copied());
    assert!(errors.is_empty(), "{settings:?}: {errors:?}");
    let mut config = config;
    config.training.log_every = 7;
    let mut pair = Pair::new(config).expect("valid config");
    pair.train(WARM_UP);
    pair
}

#[track_caller]
fn assert_no_allocations(run: &mut Run, what: &str) {
    let step = run.step;
    let n = allocations(|| {
        for _ in 0..STEPS {
            run.step();
        }
    });
    assert!(run.diverged.is_none(), "{what}: diverged: {:?}", run.diverged);
    assert_eq!(run.step, step + STEPS, "{what}: took fewer steps than asked");
    assert_eq!(n, 0, "{what}: {n} allocations in {STEPS} training steps after {WARM_UP} warm-up steps");
}

#[test]
fn training_steps_allocate_nothing_after_warm_up() {
    for settings in CASES {
        let mut pair = warm_pair(settings);
        for run in pair.sides_mut() {
            let settings: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let what = format!("{} with settings [{}]", run.side.label(), settings.join(" "));
            let logged = run.history.points.len();
            assert_no_allocations(run, &what);
            assert!(run.history.points.len() > logged, "{what}: no metrics were logged inside the counted steps");
        }
    }
}

/// The counter itself sees an allocation, so a zero above means something.
#[test]
fn the_counter_counts() {
    let n = allocations(|| {
        std::hint::black_box(vec![1u8; 10]);
    });
    assert_eq!(n, 1);
    let mut pair = warm_pair(CASES[0]);
    pair.left.record_checkpoints(1, 1000);
    // A checkpoint is a copy of the parameters: one allocation per step.
    let n = allocations(|| pair.left.step());
    assert!(n >= 1, "a checkpointing step allocates, the counter saw {n}");
}
