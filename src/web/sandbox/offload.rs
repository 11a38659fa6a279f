//! The sandbox's half of the GPU backend. The kernels live in a second wasm
//! module (`www/pkg-gpu`, see `web/gpu_page.rs`) that the element loads only
//! where WebGPU has an adapter; the two modules cannot share memory, so the
//! sandbox hands out requests as JSON (`backend::requests`) and takes the
//! answers back: decision boundaries and the landscape's two surfaces. (A
//! study needs only the settings: the GPU module builds it from them, and so
//! does the study module on the CPU.) Training steps stay on the CPU: one step
//! of a tiny net is far smaller than a GPU round trip.
//!
//! Answers arrive a frame or more after their request. A boundary is for the
//! runs' (revision, steps) it was asked at, and dropped if the runs were
//! replaced meanwhile; a surface is for the landscape in progress, and one
//! asked for a landscape that has since been replaced is dropped (at most one
//! surface per side is out at a time, so the sandbox knows which that is).

use wasm_bindgen::prelude::*;

use crate::model::Architecture;
use crate::requests::BoundaryRequest;

use super::super::field::{GRID, VIEW};
use super::Sandbox;

/// What has been asked of the GPU module and not answered yet.
#[derive(Default)]
pub(super) struct Offload {
    /// The runs' (left step, right step, revision) of the boundary request in flight.
    pub(super) boundary: Option<(usize, usize, u32)>,
    /// Each side's surface request in flight, if any.
    surfaces: [Asked; 2],
}

/// A side's surface request: none out, or out for the landscape in progress,
/// or out for one that has since been replaced (its answer will be dropped).
#[derive(Clone, Copy, Default, PartialEq)]
enum Asked {
    #[default]
    Nothing,
    Current,
    Replaced,
}

impl Offload {
    /// A new landscape is in progress: answers to surfaces asked before are not for it.
    pub(super) fn new_landscape(&mut self) {
        for asked in &mut self.surfaces {
            if *asked == Asked::Current {
                *asked = Asked::Replaced;
            }
        }
    }
}

#[wasm_bindgen]
impl Sandbox {
    /// Turns the GPU backend on (`description` = the adapter, as the page
    /// shows it) or off (""): with it on, `boundaryRequest` and
    /// `surfaceRequest` hand out work and the CPU leaves that work alone
    /// (except boundaries not yet answered for new runs). Turning it off
    /// (e.g. after a GPU failure) gives the work back to the CPU.
    #[wasm_bindgen(js_name = setGpu)]
    pub fn set_gpu(&mut self, description: &str) {
        self.gpu = (!description.is_empty()).then(|| description.to_string());
        self.offload.boundary = None;
        self.offload.surfaces = [Asked::Nothing; 2];
        if let Some(pending) = &mut self.landscape_pending {
            pending.surfaces_elsewhere = self.gpu.is_some();
        }
        // The GPU fields may be a step behind: recompute on the CPU now.
        self.fields_at = [None, None];
        self.metrics_cache = None;
    }

    /// Both sides' decision boundaries to compute (a `BoundaryRequest` as
    /// JSON), or "" when the last one asked is still out or the runs have not
    /// moved since.
    #[wasm_bindgen(js_name = boundaryRequest)]
    pub fn boundary_request(&mut self) -> String {
        let pair = self.pair();
        let key = (pair.left.step, pair.right.step, self.revision);
        let answered = self.fields_at[0] == Some((key.0, key.2)) && self.fields_at[1] == Some((key.1, key.2));
        if self.gpu.is_none() || self.offload.boundary.is_some() || answered {
            return String::new();
        }
        let request = BoundaryRequest {
            architecture: Architecture::of(&pair.left.mlp),
            params: vec![pair.left.params.clone(), pair.right.params.clone()],
            lo: -VIEW,
            hi: VIEW,
            n: GRID,
        };
        self.offload.boundary = Some(key);
        to_json(&request)
    }

    /// The answer to the last `boundaryRequest`: both sides' probabilities,
    /// left then right. Returns "" when taken (or stale: the runs were
    /// replaced, or `setGpu` forgot the request), else what is wrong with it.
    #[wasm_bindgen(js_name = boundaryAnswer)]
    pub fn boundary_answer(&mut self, probs: &[f32]) -> String {
        let Some((left, right, revision)) = self.offload.boundary.take() else {
            return String::new();
        };
        if revision != self.revision {
            return String::new();
        }
        let classes = self.pair().left.mlp.classes;
        if probs.len() != 2 * GRID * GRID * classes {
            return format!("{} probabilities for two {GRID}x{GRID} fields of {classes} classes", probs.len());
        }
        let half = probs.len() / 2;
        for (i, (step, part)) in [(left, &probs[..half]), (right, &probs[half..])].into_iter().enumerate() {
            if let Err(e) = self.fields[i].set_probabilities(part, classes) {
                return e;
            }
            self.fields_at[i] = Some((step, revision));
        }
        String::new()
    }

    /// The next loss surface of the landscape in progress to compute (a
    /// `SurfaceRequest` as JSON), or "" when none is waiting.
    #[wasm_bindgen(js_name = surfaceRequest)]
    pub fn surface_request(&mut self) -> String {
        let Some(pending) = self.landscape_pending.as_ref().filter(|_| self.gpu.is_some()) else {
            return String::new();
        };
        for side in 0..2 {
            if self.offload.surfaces[side] != Asked::Nothing {
                continue; // asked already (or an answer for an old landscape is still out)
            }
            if let Some(request) = pending.surface_request(side) {
                self.offload.surfaces[side] = Asked::Current;
                return to_json(&request);
            }
        }
        String::new()
    }

    /// Takes the answer to a `surfaceRequest` (its `side`, and the values).
    /// Returns "" when taken or stale (its landscape was replaced, or `setGpu`
    /// forgot the request), else what is wrong with it.
    #[wasm_bindgen(js_name = surfaceAnswer)]
    pub fn surface_answer(&mut self, side: u32, values: &[f64]) -> String {
        let Some(asked) = self.offload.surfaces.get_mut(side as usize) else { return String::new() };
        let current = std::mem::take(asked) == Asked::Current;
        let Some(pending) = self.landscape_pending.as_mut().filter(|_| current) else { return String::new() };
        match pending.fill_surface(side as usize, values) {
            Ok(()) => String::new(),
            Err(e) => format!("surface answer: {e}"),
        }
    }
}

/// JSON through `serde_json::Value`, as the rest of the sandbox writes it: one
/// serializer in the module instead of one more per type (the bundle is embedded in blogs).
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).expect("plain data serialises").to_string()
}
