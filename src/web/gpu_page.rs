//! The page's GPU module (feature `gpu-page`; `scripts/build-wasm.sh` builds it
//! into `www/pkg-gpu` without the sandbox): the kernels of [`crate::gpu`]
//! behind the JSON requests of [`crate::requests`]. The element
//! loads it only where `navigator.gpu` gives an adapter and the backend is not
//! `cpu`, so a page without WebGPU never downloads wgpu.
//!
//! Every method returns a Promise; any failure rejects it with the reason, and
//! the element then goes back to the CPU and says why.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::GpuBackend;
use crate::gpu::GpuError;
use crate::requests::{BoundaryRequest, SurfaceRequest};
use crate::settings::parse_query;
use crate::study::Study;
use crate::study_grid::page_grid;

use super::now_ms;

/// An open WebGPU device with the kernels compiled.
#[wasm_bindgen]
pub struct GpuKernels {
    gpu: GpuBackend,
}

#[wasm_bindgen]
impl GpuKernels {
    /// Opens the adapter and compiles the kernels; rejects with the reason
    /// where there is no adapter or the device fails.
    pub async fn open() -> Result<GpuKernels, JsError> {
        super::install_panic_hook();
        Ok(GpuKernels { gpu: GpuBackend::open().await.map_err(js_error)? })
    }

    /// The adapter, e.g. "unnamed adapter [Cpu, BrowserWebGpu]".
    pub fn description(&self) -> String {
        self.gpu.description()
    }

    /// A software adapter (SwiftShader): correct, but slower than the CPU path.
    #[wasm_bindgen(js_name = isSoftware)]
    pub fn is_software(&self) -> bool {
        self.gpu.is_software()
    }

    /// "" while the device works; else why it does not (lost, or an error).
    pub fn problem(&self) -> String {
        self.gpu.check().err().map_or_else(String::new, |e| e.to_string())
    }

    /// Resolves to a Float32Array of both sides' probabilities (a
    /// `BoundaryRequest` as JSON in).
    #[wasm_bindgen(js_name = boundaryGrid)]
    pub fn boundary_grid(&self, request_json: String) -> js_sys::Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            let request: BoundaryRequest = parse(&request_json)?;
            let probs = gpu.run_boundary(&request).await.map_err(js_error)?;
            Ok(js_sys::Float32Array::from(&probs[..]).into())
        })
    }

    /// Resolves to a Float64Array of the surface's values, set after set (a
    /// `SurfaceRequest` as JSON in).
    pub fn surface(&self, request_json: String) -> js_sys::Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            let request: SurfaceRequest = parse(&request_json)?;
            let values = gpu.run_surface(&request).await.map_err(js_error)?;
            Ok(js_sys::Float64Array::from(&values[..]).into())
        })
    }

    /// Trains the study of `settings_query` (the sandbox's `settingsQuery`),
    /// `replicas` seeds per side and `steps` steps each, and resolves to its
    /// `StudyReport` as JSON.
    pub fn study(&self, settings_query: String, replicas: u32, steps: u32) -> js_sys::Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            let settings = parse_query(&settings_query);
            let study = Study::from_settings(
                settings.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                replicas as usize,
                steps as usize,
            )
            .map_err(|e| JsError::new(&e.to_string()))?;
            let answer = gpu.run_study(&study, now_ms).await.map_err(js_error)?;
            Ok(serde_json::to_string(&answer).expect("answers serialise").into())
        })
    }
}

#[wasm_bindgen]
impl GpuKernels {
    /// Trains units `unit`, `unit + 1`, ... of the study panel's grid (the
    /// same inputs as the study module's `GridStudy`, so the same grid:
    /// `study_grid::page_grid`) as one batch of the replica kernels, each on
    /// its data draw: as many as share the first's network, batch size and
    /// steps, at most `maxUnits` (`GpuBackend::train_grid_units`). Resolves to
    /// an array with one `Float64Array` per unit (every run's final weights,
    /// run after run) for the study module's `deal`. Rejects with
    /// "unsupported: ..." when the kernels cannot train unit `unit` (the
    /// study module trains it on the CPU), or the GPU's error.
    #[wasm_bindgen(js_name = gridUnits)]
    #[allow(clippy::too_many_arguments)]
    pub fn grid_units(
        &self,
        settings_query: String,
        axes: String,
        data_seeds: u32,
        seeds: u32,
        until_train_loss: f64,
        check_every: u32,
        unit: u32,
        max_units: u32,
    ) -> js_sys::Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            let grid = page_grid(
                &settings_query,
                &axes,
                data_seeds as usize,
                seeds as usize,
                until_train_loss,
                check_every as usize,
            )
            .map_err(|e| JsError::new(&e))?;
            if unit as usize >= grid.units() {
                return Err(JsError::new(&format!("unit {unit}: the grid has {} units", grid.units())).into());
            }
            match gpu.train_grid_units(&grid, unit as usize, max_units.max(1) as usize).await {
                Ok(units) => Ok(units
                    .iter()
                    .map(|weights| js_sys::Float64Array::from(&weights.concat()[..]))
                    .collect::<js_sys::Array>()
                    .into()),
                Err(GpuError::Unsupported(why)) => Err(JsError::new(&format!("unsupported: {why}")).into()),
                Err(e) => Err(js_error(e).into()),
            }
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, JsValue> {
    serde_json::from_str(json).map_err(|e| JsError::new(&format!("GPU request: {e}")).into())
}

fn js_error(e: GpuError) -> JsError {
    JsError::new(&e.to_string())
}
