//! One decision-boundary panel: the heatmap (a pixel buffer, blitted and
//! scaled in one call), the boundary line, the axes (plotters over the same
//! canvas), then the points (batched paths on the 2d context, drawn once onto
//! a layer of their own and composited: see `BoundaryPainter::points_layer`).

use std::cell::RefCell;

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use wasm_bindgen::{Clamped, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

use super::canvas::{context_2d, scratch_canvas};

use crate::data::Dataset;

use super::field::{data_to_grid, Field, GRID, VIEW};
use super::palette::{self, Rgb};

/// What to draw on a panel besides the heatmap.
#[derive(Clone, Copy, Debug)]
pub struct PanelOptions {
    /// Draw the training points (discs).
    pub show_train: bool,
    /// Draw the OOD test points (crosses).
    pub show_ood: bool,
    /// Device pixels per CSS pixel: line widths, fonts and markers scale with it.
    pub scale: f64,
    /// Which data the points are (the sandbox's settings revision): the cached layer
    /// of points is drawn again only when this, the options or the size change.
    pub data_version: u32,
}

/// Where the view [-VIEW, VIEW]^2 landed on the canvas, in canvas pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlotRect {
    /// Left edge of the view, in canvas pixels.
    pub x: f64,
    /// Top edge of the view, in canvas pixels.
    pub y: f64,
    /// Width and height of the (square) view, in canvas pixels.
    pub size: f64,
}

impl PlotRect {
    /// The canvas pixel of a data point.
    pub fn to_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        let (u, v) = data_to_grid(x, y);
        let cell = self.size / GRID as f64;
        (self.x + u * cell, self.y + v * cell)
    }
}

/// Holds the small GRID x GRID canvas the heatmap is written to before it is
/// scaled onto a panel.
pub struct BoundaryPainter {
    scratch: HtmlCanvasElement,
    scratch_ctx: CanvasRenderingContext2d,
    /// The points as a transparent layer of the panel's size, and what it shows.
    points: RefCell<Option<(LayerKey, HtmlCanvasElement)>>,
}

/// What a cached layer of points was drawn for.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LayerKey {
    data_version: u32,
    width: u32,
    height: u32,
    show: (bool, bool),
    rect: (u64, u64, u64),
    scale: u64,
}

impl BoundaryPainter {
    /// A painter with its scratch canvas; fails only where no canvas can be made.
    pub fn new() -> Result<Self, JsValue> {
        let scratch = scratch_canvas(GRID as u32, GRID as u32)?;
        let scratch_ctx = context_2d(&scratch)?;
        Ok(BoundaryPainter { scratch, scratch_ctx, points: RefCell::new(None) })
    }

    /// Draws the whole panel; returns where the view is. A canvas too small to
    /// hold a plot is left alone.
    pub fn draw(
        &self,
        canvas: &HtmlCanvasElement,
        field: &Field,
        train: &Dataset,
        ood: &Dataset,
        options: &PanelOptions,
    ) -> Result<PlotRect, JsValue> {
        let s = options.scale.clamp(0.5, 4.0);
        let (width, height) = (canvas.width() as f64, canvas.height() as f64);
        let (label_x, label_y, pad) = (26.0 * s, 20.0 * s, 6.0 * s);
        let size = (width - label_x - 2.0 * pad).min(height - label_y - 2.0 * pad).floor();
        if size < 40.0 {
            return Ok(PlotRect::default());
        }
        // Centre the square plot: whatever the canvas has spare goes to the margins.
        let left = ((width - label_x - size) / 2.0).floor();
        let top = ((height - label_y - size) / 2.0).floor();

        let backend = CanvasBackend::with_canvas_object(canvas.clone()).ok_or("the canvas has no 2d context")?;
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(js_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_left(left as i32)
            .margin_top(top as i32)
            .margin_right((width - left - label_x - size) as i32)
            .margin_bottom((height - top - size - label_y) as i32)
            .x_label_area_size(label_y as i32)
            .y_label_area_size(label_x as i32)
            .build_cartesian_2d(-VIEW..VIEW, -VIEW..VIEW)
            .map_err(js_error)?;
        // The heatmap goes exactly where plotters put the axes' range.
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let rect = PlotRect { x: xs.start as f64, y: ys.start as f64, size: (xs.end - xs.start) as f64 };

        let ctx = context_2d(canvas)?;
        self.blit_heatmap(&ctx, field, &rect)?;
        stroke_boundary(&ctx, field, &rect, s);

        let axis_colour = RGBColor(110, 110, 110);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(7)
            .y_labels(7)
            .axis_style(axis_colour.stroke_width(1))
            .label_style((FontFamily::SansSerif, 11.0 * s).into_font().color(&RGBColor(85, 85, 85)))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(js_error)?;

        if options.show_train || options.show_ood {
            let key = LayerKey {
                data_version: options.data_version,
                width: canvas.width(),
                height: canvas.height(),
                show: (options.show_train, options.show_ood),
                rect: (rect.x.to_bits(), rect.y.to_bits(), rect.size.to_bits()),
                scale: s.to_bits(),
            };
            let layer = self.points_layer(key, &rect, train, ood)?;
            ctx.draw_image_with_html_canvas_element(&layer, 0.0, 0.0)?;
        }
        Ok(rect)
    }

    /// The points of a panel on a transparent canvas of its size, drawn again
    /// only when `key` changes. Thousands of points (a 5000-point run) take
    /// the browser over 15 ms to rasterise; the points never move while the
    /// runs train, so a redraw composites this layer instead.
    fn points_layer(
        &self,
        key: LayerKey,
        rect: &PlotRect,
        train: &Dataset,
        ood: &Dataset,
    ) -> Result<HtmlCanvasElement, JsValue> {
        let mut cached = self.points.borrow_mut();
        if let Some((k, layer)) = cached.as_ref() {
            if *k == key {
                return Ok(layer.clone());
            }
        }
        let layer = scratch_canvas(key.width, key.height)?;
        let ctx = context_2d(&layer)?;
        let s = f64::from_bits(key.scale);
        if key.show.0 {
            draw_train_points(&ctx, rect, train, s);
        }
        if key.show.1 {
            draw_ood_points(&ctx, rect, ood, s);
        }
        *cached = Some((key, layer.clone()));
        Ok(layer)
    }

    /// The GRID x GRID pixel buffer onto the scratch canvas, then scaled onto
    /// the plot in one `drawImage`.
    fn blit_heatmap(&self, ctx: &CanvasRenderingContext2d, field: &Field, rect: &PlotRect) -> Result<(), JsValue> {
        let image = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&field.rgba), GRID as u32, GRID as u32)?;
        self.scratch_ctx.put_image_data(&image, 0.0, 0.0)?;
        ctx.set_image_smoothing_enabled(true);
        ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&self.scratch, rect.x, rect.y, rect.size, rect.size)
    }
}

/// The decision boundary as one path: a single stroke for all segments.
fn stroke_boundary(ctx: &CanvasRenderingContext2d, field: &Field, rect: &PlotRect, scale: f64) {
    let cell = rect.size / GRID as f64;
    ctx.begin_path();
    for seg in field.segments.chunks_exact(4) {
        ctx.move_to(rect.x + seg[0] * cell, rect.y + seg[1] * cell);
        ctx.line_to(rect.x + seg[2] * cell, rect.y + seg[3] * cell);
    }
    ctx.set_stroke_style_str(&palette::css(palette::BOUNDARY_LINE, 0.8));
    ctx.set_line_width(1.5 * scale);
    ctx.stroke();
}

// Points go straight to the 2d context, one path per class, rather than
// through plotters: hundreds of plotters elements cost a colour string and
// several calls each, which made points the most expensive part of a frame.

/// Training points: discs in the class colour on a white halo.
fn draw_train_points(ctx: &CanvasRenderingContext2d, rect: &PlotRect, data: &Dataset, s: f64) {
    let r = marker_radius(data.len()) * s;
    let visible = || data.points.iter().zip(&data.labels).filter(|(p, _)| in_view(p));
    ctx.begin_path();
    for (p, _) in visible() {
        disc(ctx, rect, p, r + s);
    }
    ctx.set_fill_style_str("#fff");
    ctx.fill();
    for class in 0..data.classes {
        ctx.begin_path();
        for (p, _) in visible().filter(|(_, &l)| l == class) {
            disc(ctx, rect, p, r);
        }
        ctx.set_fill_style_str(&palette::css(palette::class_colour(class), 1.0));
        ctx.fill();
    }
}

/// OOD test points: crosses, darker than the class colour. Another shape and
/// no fill, so they never pass for training points.
fn draw_ood_points(ctx: &CanvasRenderingContext2d, rect: &PlotRect, data: &Dataset, s: f64) {
    let r = (marker_radius(data.len()) + 0.5) * s;
    ctx.set_line_width((1.5 * s).round().max(1.0));
    for class in 0..data.classes {
        ctx.begin_path();
        for (p, _) in data.points.iter().zip(&data.labels).filter(|(p, &l)| l == class && in_view(p)) {
            let (x, y) = rect.to_pixel(p[0], p[1]);
            ctx.move_to(x - r, y - r);
            ctx.line_to(x + r, y + r);
            ctx.move_to(x - r, y + r);
            ctx.line_to(x + r, y - r);
        }
        ctx.set_stroke_style_str(&palette::css(palette::shade(palette::class_colour(class), 0.3), 1.0));
        ctx.stroke();
    }
}

fn disc(ctx: &CanvasRenderingContext2d, rect: &PlotRect, p: &[f64; 2], r: f64) {
    let (x, y) = rect.to_pixel(p[0], p[1]);
    ctx.move_to(x + r, y);
    // arc() only fails for a negative radius.
    let _ = ctx.arc(x, y, r, 0.0, std::f64::consts::TAU);
}

fn in_view(p: &[f64; 2]) -> bool {
    p[0].abs() <= VIEW && p[1].abs() <= VIEW
}

/// Smaller markers for crowded plots (CSS pixels).
fn marker_radius(points: usize) -> f64 {
    match points {
        0..=400 => 3.0,
        401..=1500 => 2.5,
        _ => 2.0,
    }
}

/// A palette colour as plotters wants it.
pub fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// A drawing error as a JS value, for the page to show.
pub fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&format!("drawing failed: {e}"))
}
