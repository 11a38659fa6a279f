//! Canvases in a window or in a Web Worker.
//!
//! The page draws in its worker, on `OffscreenCanvas`es; the wasm tests draw on
//! `<canvas>` elements. Both have the same 2D API, and web-sys method calls are
//! plain JS method calls, so the drawing code takes either as an
//! `HtmlCanvasElement`. The only type checks are plotters-canvas' own
//! (`dyn_into`), which the worker script satisfies (see `www/flatminima-worker.js`).

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

/// A canvas for intermediate pictures (a heatmap before it is scaled onto a
/// panel): an `OffscreenCanvas`, which windows and workers both have.
pub fn scratch_canvas(width: u32, height: u32) -> Result<HtmlCanvasElement, JsValue> {
    Ok(web_sys::OffscreenCanvas::new(width, height)?.unchecked_into())
}

/// The 2D context of a `<canvas>` or an `OffscreenCanvas` (no type check: see the module doc).
pub fn context_2d(canvas: &HtmlCanvasElement) -> Result<CanvasRenderingContext2d, JsValue> {
    Ok(canvas.get_context("2d")?.ok_or("the canvas has no 2d context")?.unchecked_into())
}
