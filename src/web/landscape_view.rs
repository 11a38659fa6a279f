//! The landscape pictures: a surface as a heatmap with contour lines and the
//! trajectory on top, the same surface in 3D (plotters, rotatable), and 1D
//! slices (loss against distance along a direction). Colours are viridis on
//! log10(loss), one scale for both sides' surfaces of a data set so that the SGD
//! and SAM pictures can be compared at a glance.

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use wasm_bindgen::{Clamped, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

use crate::landscape::{Split, Surface, Trajectory};

use super::boundary::{js_error, rgb};
use super::canvas::{context_2d, scratch_canvas};
use super::chart;
use super::palette::{self, Rgb};

/// Contour lines per picture (log-spaced over the shared range).
const CONTOUR_LEVELS: usize = 9;
/// SAM's perturbed points drawn (the most recent ones).
const PERTURBED_SHOWN: usize = 24;

/// One surface picture's inputs.
pub struct SurfacePicture<'a> {
    /// The loss surface to draw.
    pub surface: &'a Surface,
    /// Which data set's loss it is (train, ID or OOD).
    pub split: Split,
    /// log10(loss) at the bottom and top of the colour scale.
    pub log_range: (f64, f64),
    /// The run's path projected onto the surface's plane, if there is one.
    pub trajectory: Option<&'a Trajectory>,
    /// Device pixels per CSS pixel.
    pub scale: f64,
}

impl SurfacePicture<'_> {
    fn values(&self) -> Option<&[f64]> {
        self.surface.values(self.split)
    }

    /// The values of the chosen set with the grid's columns (alphas) and rows (betas).
    fn grid(&self) -> Option<(&[f64], usize, usize)> {
        self.values().map(|v| (v, self.surface.alphas.len(), self.surface.betas.len()))
    }

    fn colour(&self, loss: f64) -> Option<Rgb> {
        (loss.is_finite() && loss > 0.0).then(|| palette::viridis(unit(loss.log10(), self.log_range)))
    }
}

/// Where v sits in [lo, hi], clamped to [0, 1].
fn unit(v: f64, (lo, hi): (f64, f64)) -> f64 {
    ((v - lo) / (hi - lo).max(1e-12)).clamp(0.0, 1.0)
}

/// Holds a small canvas the surface is written to, one pixel per grid cell,
/// before it is scaled (smoothly) onto the plot in one call.
pub struct LandscapePainter {
    scratch: HtmlCanvasElement,
    scratch_ctx: CanvasRenderingContext2d,
}

impl LandscapePainter {
    /// A painter with its scratch canvas; fails only where no canvas can be made.
    pub fn new() -> Result<Self, JsValue> {
        let scratch = scratch_canvas(1, 1)?;
        let scratch_ctx = context_2d(&scratch)?;
        Ok(LandscapePainter { scratch, scratch_ctx })
    }

    /// Heatmap of the surface, contour lines, axes in the plane's coordinates,
    /// the trajectory (white line, start as a ring), SAM's w + e points (small
    /// crosses) and the solution (black dot at the origin). Cells not computed
    /// yet stay light grey, so the picture fills in as the job runs.
    pub fn draw_contour(&self, canvas: &HtmlCanvasElement, pic: &SurfacePicture) -> Result<(), JsValue> {
        let s = pic.scale.clamp(0.5, 4.0);
        let (width, height) = (canvas.width() as f64, canvas.height() as f64);
        if width < 80.0 * s || height < 80.0 * s {
            return Ok(());
        }
        let surface = pic.surface;
        let (cols, rows) = (surface.alphas.len(), surface.betas.len());
        let (a0, a1) = (surface.alphas[0], surface.alphas[cols - 1]);
        let (b0, b1) = (surface.betas[0], surface.betas[rows - 1]);
        let backend = CanvasBackend::with_canvas_object(canvas.clone()).ok_or("the canvas has no 2d context")?;
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(js_error)?;
        let label_area = (30.0 * s) as i32;
        let mut chart = ChartBuilder::on(&root)
            .margin((6.0 * s) as i32)
            .margin_right((10.0 * s) as i32)
            .x_label_area_size(label_area)
            .y_label_area_size(label_area + (6.0 * s) as i32)
            .build_cartesian_2d(a0..a1, b0..b1)
            .map_err(js_error)?;
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let rect = Rect {
            x: xs.start as f64,
            y: ys.start as f64,
            w: (xs.end - xs.start) as f64,
            h: (ys.end - ys.start) as f64,
        };
        let ctx = context_2d(canvas)?;
        if pic.values().is_some() {
            self.blit(&ctx, pic, &rect)?;
            stroke_contours(&ctx, pic, &rect, s);
        }
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(5)
            .y_labels(5)
            .axis_style(RGBColor(110, 110, 110).stroke_width(1))
            .label_style((FontFamily::SansSerif, 10.0 * s).into_font().color(&RGBColor(85, 85, 85)))
            .axis_desc_style((FontFamily::SansSerif, 11.0 * s).into_font().color(&RGBColor(70, 70, 70)))
            .x_desc("α (d1)")
            .y_desc("β (d2)")
            .x_label_formatter(&|v| trim(*v))
            .y_label_formatter(&|v| trim(*v))
            .draw()
            .map_err(js_error)?;
        let to_px =
            |p: [f64; 2]| (rect.x + (p[0] - a0) / (a1 - a0) * rect.w, rect.y + (b1 - p[1]) / (b1 - b0) * rect.h);
        let inside = |p: &[f64; 2]| p[0] >= a0 && p[0] <= a1 && p[1] >= b0 && p[1] <= b1;
        ctx.save();
        ctx.begin_path();
        ctx.rect(rect.x, rect.y, rect.w, rect.h);
        ctx.clip();
        if let Some(t) = pic.trajectory {
            draw_trajectory(&ctx, t, &to_px, &inside, s);
        }
        // The solution the plane is centred on.
        let (x, y) = to_px([0.0, 0.0]);
        ctx.begin_path();
        ctx.arc(x, y, 3.5 * s, 0.0, std::f64::consts::TAU)?;
        ctx.set_fill_style_str("#000");
        ctx.fill();
        ctx.restore();
        Ok(())
    }

    fn blit(&self, ctx: &CanvasRenderingContext2d, pic: &SurfacePicture, rect: &Rect) -> Result<(), JsValue> {
        let Some((values, cols, rows)) = pic.grid() else { return Ok(()) };
        if self.scratch.width() != cols as u32 || self.scratch.height() != rows as u32 {
            self.scratch.set_width(cols as u32);
            self.scratch.set_height(rows as u32);
        }
        // Row i of the surface is beta[i] (increasing); the picture has beta up.
        let mut rgba = vec![0u8; cols * rows * 4];
        for i in 0..rows {
            for j in 0..cols {
                let [r, g, b] = pic.colour(values[i * cols + j]).unwrap_or(palette::UNDEFINED);
                let k = ((rows - 1 - i) * cols + j) * 4;
                rgba[k..k + 4].copy_from_slice(&[r, g, b, 255]);
            }
        }
        let image = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), cols as u32, rows as u32)?;
        self.scratch_ctx.put_image_data(&image, 0.0, 0.0)?;
        ctx.set_image_smoothing_enabled(true);
        // Pixel centres are the grid points: stretch half a cell beyond each edge, then clip.
        let (cw, ch) = (rect.w / (cols - 1).max(1) as f64, rect.h / (rows - 1).max(1) as f64);
        ctx.save();
        ctx.begin_path();
        ctx.rect(rect.x, rect.y, rect.w, rect.h);
        ctx.clip();
        let drawn = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(
            &self.scratch,
            rect.x - cw / 2.0,
            rect.y - ch / 2.0,
            rect.w + cw,
            rect.h + ch,
        );
        ctx.restore();
        drawn
    }
}

/// The plot area in canvas pixels.
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Contour lines by marching squares at log-spaced levels: thin, dark, and
/// only through cells whose four corners are computed.
fn stroke_contours(ctx: &CanvasRenderingContext2d, pic: &SurfacePicture, rect: &Rect, s: f64) {
    let Some((values, cols, rows)) = pic.grid() else { return };
    if cols < 2 || rows < 2 {
        return;
    }
    let logs: Vec<f64> = values.iter().map(|&v| if v > 0.0 { v.log10() } else { f64::NAN }).collect();
    let (lo, hi) = pic.log_range;
    let (cw, ch) = (rect.w / (cols - 1) as f64, rect.h / (rows - 1) as f64);
    let px = |i: f64, j: f64| (rect.x + j * cw, rect.y + (rows as f64 - 1.0 - i) * ch);
    ctx.begin_path();
    for level in 1..=CONTOUR_LEVELS {
        let c = lo + (hi - lo) * level as f64 / (CONTOUR_LEVELS + 1) as f64;
        for i in 0..rows - 1 {
            for j in 0..cols - 1 {
                let corners = [
                    logs[i * cols + j],
                    logs[i * cols + j + 1],
                    logs[(i + 1) * cols + j + 1],
                    logs[(i + 1) * cols + j],
                ];
                if corners.iter().any(|v| !v.is_finite()) {
                    continue;
                }
                // Corner positions (i, j) in grid units, in the same order.
                let pos = [
                    (i as f64, j as f64),
                    (i as f64, j as f64 + 1.0),
                    (i as f64 + 1.0, j as f64 + 1.0),
                    (i as f64 + 1.0, j as f64),
                ];
                let mut crossings = Vec::with_capacity(4);
                for e in 0..4 {
                    let (va, vb) = (corners[e], corners[(e + 1) % 4]);
                    if (va < c) != (vb < c) {
                        let t = (c - va) / (vb - va);
                        let (pa, pb) = (pos[e], pos[(e + 1) % 4]);
                        crossings.push((pa.0 + t * (pb.0 - pa.0), pa.1 + t * (pb.1 - pa.1)));
                    }
                }
                // 2 crossings: one segment; 4 (a saddle): two, pairing neighbours.
                for pair in crossings.chunks_exact(2) {
                    let (x0, y0) = px(pair[0].0, pair[0].1);
                    let (x1, y1) = px(pair[1].0, pair[1].1);
                    ctx.move_to(x0, y0);
                    ctx.line_to(x1, y1);
                }
            }
        }
    }
    ctx.set_stroke_style_str("rgba(20, 20, 20, 0.45)");
    ctx.set_line_width(0.8 * s);
    ctx.stroke();
}

fn draw_trajectory(
    ctx: &CanvasRenderingContext2d,
    t: &Trajectory,
    to_px: &dyn Fn([f64; 2]) -> (f64, f64),
    inside: &dyn Fn(&[f64; 2]) -> bool,
    s: f64,
) {
    let start = t.perturbed.len().saturating_sub(PERTURBED_SHOWN);
    ctx.begin_path();
    for p in t.perturbed[start..].iter().filter(|p| inside(p)) {
        let (x, y) = to_px(*p);
        let r = 2.5 * s;
        ctx.move_to(x - r, y - r);
        ctx.line_to(x + r, y + r);
        ctx.move_to(x - r, y + r);
        ctx.line_to(x + r, y - r);
    }
    ctx.set_stroke_style_str(&palette::css(palette::PERTURBED, 0.9));
    ctx.set_line_width(1.2 * s);
    ctx.stroke();
    if t.coords.len() < 2 {
        return;
    }
    // White over a dark halo: visible on every colour of the map.
    for (colour, width) in [("rgba(0, 0, 0, 0.55)", 3.2), ("#fff", 1.6)] {
        ctx.begin_path();
        for (k, p) in t.coords.iter().enumerate() {
            let (x, y) = to_px(*p);
            if k == 0 {
                ctx.move_to(x, y);
            } else {
                ctx.line_to(x, y);
            }
        }
        ctx.set_stroke_style_str(colour);
        ctx.set_line_width(width * s);
        ctx.stroke();
    }
    let (x, y) = to_px(t.coords[0]);
    ctx.begin_path();
    let _ = ctx.arc(x, y, 3.5 * s, 0.0, std::f64::consts::TAU);
    ctx.set_stroke_style_str("#fff");
    ctx.set_line_width(1.5 * s);
    ctx.stroke();
}

/// The surface in 3D: log10(loss) as height over the plane, coloured like the
/// heatmap, seen from `yaw` and `pitch` (radians). Quads are drawn from the
/// farthest to the nearest (plotters does not sort them), so any rotation looks
/// right. Large grids are thinned to at most ~30 x 30 quads.
pub fn draw_surface_3d(canvas: &HtmlCanvasElement, pic: &SurfacePicture, yaw: f64, pitch: f64) -> Result<(), JsValue> {
    let s = pic.scale.clamp(0.5, 4.0);
    if canvas.width() < (80.0 * s) as u32 || canvas.height() < (80.0 * s) as u32 {
        return Ok(());
    }
    let Some(values) = pic.values() else { return Ok(()) };
    let surface = pic.surface;
    let (cols, rows) = (surface.alphas.len(), surface.betas.len());
    let stride = cols.max(rows).div_ceil(30).max(1);
    let pick = |n: usize| -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).step_by(stride).collect();
        if v.last() != Some(&(n - 1)) {
            v.push(n - 1);
        }
        v
    };
    let (js, is) = (pick(cols), pick(rows));
    let height = |i: usize, j: usize| {
        let v = values[i * cols + j];
        if v.is_finite() && v > 0.0 {
            Some(v.log10().clamp(pic.log_range.0, pic.log_range.1))
        } else {
            None
        }
    };
    let backend = CanvasBackend::with_canvas_object(canvas.clone()).ok_or("the canvas has no 2d context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(js_error)?;
    let (lo, hi) = pic.log_range;
    let (a0, a1) = (surface.alphas[0], surface.alphas[cols - 1]);
    let (b0, b1) = (surface.betas[0], surface.betas[rows - 1]);
    let mut chart = ChartBuilder::on(&root)
        .margin((4.0 * s) as i32)
        .build_cartesian_3d(a0..a1, lo..hi, b0..b1)
        .map_err(js_error)?;
    chart.with_projection(|mut p| {
        p.yaw = yaw;
        p.pitch = pitch;
        p.scale = 0.72;
        p.into_matrix()
    });
    chart
        .configure_axes()
        .light_grid_style(RGBColor(225, 225, 225).stroke_width(1))
        .max_light_lines(3)
        .x_labels(5)
        .z_labels(5)
        .y_labels(4)
        .label_style((FontFamily::SansSerif, 9.0 * s).into_font().color(&RGBColor(90, 90, 90)))
        .x_formatter(&|v| trim(*v))
        .z_formatter(&|v| trim(*v))
        .y_formatter(&|v| loss_label(10f64.powf(*v)))
        .draw()
        .map_err(js_error)?;
    let mut quads = Vec::new();
    for w in is.windows(2) {
        for v in js.windows(2) {
            let corners = [(w[0], v[0]), (w[0], v[1]), (w[1], v[1]), (w[1], v[0])];
            let hs: Option<Vec<f64>> = corners.iter().map(|&(i, j)| height(i, j)).collect();
            let Some(hs) = hs else { continue };
            let points: Vec<(f64, f64, f64)> =
                corners.iter().zip(&hs).map(|(&(i, j), &h)| (surface.alphas[j], h, surface.betas[i])).collect();
            let mean = hs.iter().sum::<f64>() / 4.0;
            let (cx, cz) =
                (points.iter().map(|p| p.0).sum::<f64>() / 4.0, points.iter().map(|p| p.2).sum::<f64>() / 4.0);
            let depth = chart.as_coord_spec().projected_depth(&cx, &mean, &cz);
            quads.push((depth, points, palette::viridis(unit(mean, pic.log_range))));
        }
    }
    // Painter's algorithm: the farthest quad first.
    let depths: Vec<f64> = quads.iter().map(|q| q.0 as f64).collect();
    let far_first = crate::stats::largest_first(&depths);
    chart
        .draw_series(far_first.into_iter().map(|i| {
            let (_, points, c) = &quads[i];
            Polygon::new(points.clone(), rgb(*c).filled())
        }))
        .map_err(js_error)?;
    Ok(())
}

/// One line of a 1D chart.
pub struct LineSeries1d<'a> {
    /// The coordinates along the line.
    pub x: &'a [f64],
    /// Loss at each coordinate.
    pub y: &'a [f64],
    /// The line's colour.
    pub colour: Rgb,
    /// Solid, dashed or dotted: which data set it is.
    pub dash: Dash,
}

/// Line styles say which data set: train solid, ID dashed, OOD dotted (as in the curves).
#[derive(Clone, Copy)]
pub enum Dash {
    /// The training set.
    Solid,
    /// The ID test set.
    Dashed,
    /// The OOD test set.
    Dotted,
}

impl Dash {
    /// The dash of a data set's line, the same on every chart.
    pub fn of(split: Split) -> Dash {
        match split {
            Split::Train => Dash::Solid,
            Split::Id => Dash::Dashed,
            Split::Ood => Dash::Dotted,
        }
    }
}

/// Loss (log scale) against a coordinate, with thin vertical marks at `marks`
/// (e.g. the solutions at t = 0 and t = 1). `y_range` is log10 bounds, shared
/// between pictures that should compare; None fits the data.
pub fn draw_lines(
    canvas: &HtmlCanvasElement,
    lines: &[LineSeries1d],
    x_desc: &str,
    marks: &[f64],
    y_range: Option<(f64, f64)>,
    scale: f64,
) -> Result<(), JsValue> {
    let s = scale.clamp(0.5, 4.0);
    let Some(root) = chart::white_area(canvas, s, 120.0, 80.0)? else { return Ok(()) };
    let finite = || lines.iter().flat_map(|l| l.y.iter()).copied().filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = y_range.unwrap_or_else(|| {
        finite().map(f64::log10).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (-1.0, 0.0) };
    let y = (10f64.powf(lo) * 0.9..10f64.powf(hi) * 1.1).log_scale();
    let (x0, x1) = lines
        .iter()
        .flat_map(|l| l.x.iter().copied())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (x0, x1) = if x0.is_finite() && x1 > x0 { (x0, x1) } else { (-1.0, 1.0) };
    let mut chart = chart::line_chart(&root, s, x0..x1, y)?;
    chart::light_mesh(&mut chart.configure_mesh(), s, 6, 5)
        .x_desc(x_desc)
        .y_desc("loss (log)")
        .x_label_formatter(&|v| trim(*v))
        .y_label_formatter(&|v| loss_label(*v))
        .draw()
        .map_err(js_error)?;
    let (ylo, yhi) = (10f64.powf(lo) * 0.9, 10f64.powf(hi) * 1.1);
    for &m in marks {
        chart
            .draw_series(LineSeries::new([(m, ylo), (m, yhi)], RGBColor(170, 170, 170).stroke_width(1)))
            .map_err(js_error)?;
    }
    let width = (1.75 * s).round().max(1.0) as u32;
    for line in lines {
        let style = rgb(line.colour).stroke_width(width);
        let points = line.x.iter().zip(line.y).filter(|(_, y)| y.is_finite()).map(|(&x, &y)| (x, y.clamp(ylo, yhi)));
        match line.dash {
            Dash::Solid => chart.draw_series(LineSeries::new(points, style)).map(|_| ()),
            Dash::Dashed => chart.draw_series(DashedLineSeries::new(points, 7.0 * s, 4.0 * s, style)).map(|_| ()),
            Dash::Dotted => chart.draw_series(DashedLineSeries::new(points, 1.5 * s, 3.5 * s, style)).map(|_| ()),
        }
        .map_err(js_error)?;
    }
    Ok(())
}

/// A loss on a log axis: 3, 0.5, 1e−3.
fn loss_label(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else if v >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.0e}").replace("e-", "e\u{2212}")
    }
}

/// Short axis numbers: 0.5, -1, 0.25.
fn trim(v: f64) -> String {
    let t = format!("{v:.2}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" {
        "0".into()
    } else {
        t.replace('-', "\u{2212}")
    }
}
