//! The look every line chart on the page shares (plotters over a canvas):
//! a white background, the same margins and label areas, a light grid, grey
//! axes, and label sizes that follow the device pixel ratio `s`.

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use wasm_bindgen::JsValue;
use web_sys::HtmlCanvasElement;

use super::boundary::js_error;

/// The canvas as a white drawing area, or None when it is smaller than
/// `min_w` x `min_h` CSS pixels: too small for a chart, it is left alone.
pub fn white_area(
    canvas: &HtmlCanvasElement,
    s: f64,
    min_w: f64,
    min_h: f64,
) -> Result<Option<DrawingArea<CanvasBackend, Shift>>, JsValue> {
    if canvas.width() < (min_w * s) as u32 || canvas.height() < (min_h * s) as u32 {
        return Ok(None);
    }
    let backend = CanvasBackend::with_canvas_object(canvas.clone()).ok_or("the canvas has no 2d context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(js_error)?;
    Ok(Some(root))
}

/// A 2D chart on `root` with the page's margins and label areas.
pub fn line_chart<'a, Y: AsRangedCoord>(
    root: &'a DrawingArea<CanvasBackend, Shift>,
    s: f64,
    x: std::ops::Range<f64>,
    y: Y,
) -> Result<ChartContext<'a, CanvasBackend, Cartesian2d<RangedCoordf64, Y::CoordDescType>>, JsValue> {
    ChartBuilder::on(root)
        .margin((6.0 * s) as i32)
        .margin_right((12.0 * s) as i32)
        .x_label_area_size((30.0 * s) as i32)
        .y_label_area_size((46.0 * s) as i32)
        .build_cartesian_2d(x, y)
        .map_err(js_error)
}

/// The page's grid, axis and label styles on a mesh, with about `x_labels` and
/// `y_labels` ticks. The caller adds descriptions and formatters, then draws.
pub fn light_mesh<'m, 'a, 'b, X, Y>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, CanvasBackend>,
    s: f64,
    x_labels: usize,
    y_labels: usize,
) -> &'m mut MeshStyle<'a, 'b, X, Y, CanvasBackend>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let text = |size: f64| (FontFamily::SansSerif, size * s).into_font().color(&RGBColor(70, 70, 70));
    mesh.light_line_style(RGBColor(238, 238, 238).stroke_width(1))
        .bold_line_style(RGBColor(222, 222, 222).stroke_width(1))
        .axis_style(RGBColor(150, 150, 150).stroke_width(1))
        .x_labels(x_labels)
        .y_labels(y_labels)
        .label_style(text(10.5))
        .axis_desc_style(text(11.5))
}
