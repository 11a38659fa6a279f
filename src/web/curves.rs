//! Loss and accuracy curves of both sides with plotters: colour says which
//! side, line style says which data set (train solid, ID dashed, OOD dotted),
//! so the curves stay apart in greyscale and for every colour vision.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::HtmlCanvasElement;

use crate::metrics::MetricPoint;
use crate::train::Run;

use super::boundary::{js_error, rgb};
use super::chart;
use super::palette;

type Metric = fn(&MetricPoint) -> f64;

const LOSSES: [Metric; 3] = [|m| m.train_loss, |m| m.id_loss, |m| m.ood_loss];
const ACCURACIES: [Metric; 3] = [|m| m.train_acc, |m| m.id_acc, |m| m.ood_acc];

/// Smallest loss shown on the log axis; a perfectly fitted run sits on it.
const LOSS_FLOOR: f64 = 1e-4;

/// What both charts need besides the canvas.
pub struct CurveInput<'a> {
    /// The left and right runs, whose histories are drawn.
    pub runs: [&'a Run; 2],
    /// Steps at which the OOD set changed (the severity slider moved):
    /// the OOD curves jump there, and a thin line says why.
    pub shift_marks: &'a [usize],
    /// Device pixels per CSS pixel: line widths and fonts scale with it.
    pub scale: f64,
}

impl CurveInput<'_> {
    fn max_step(&self) -> f64 {
        let last = self.runs.iter().filter_map(|r| r.history.last()).map(|m| m.step).max().unwrap_or(0);
        (last.max(10)) as f64
    }

    fn values(&self, metrics: &[Metric; 3]) -> impl Iterator<Item = f64> + '_ {
        let metrics = *metrics;
        self.runs.into_iter().flat_map(|r| r.history.points.iter()).flat_map(move |m| metrics.map(|f| f(m)))
    }
}

/// Train / ID / OOD loss of both sides on a log axis.
pub fn draw_loss(canvas: &HtmlCanvasElement, input: &CurveInput) -> Result<(), JsValue> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in input.values(&LOSSES).filter(|v| v.is_finite()) {
        lo = lo.min(v.max(LOSS_FLOOR));
        hi = hi.max(v.max(LOSS_FLOOR));
    }
    if !lo.is_finite() {
        (lo, hi) = (0.1, 1.0);
    }
    // Whole decades (at least one), so every end of the log axis is labelled.
    let lo = libm::pow(10.0, libm::floor(libm::log10(lo)));
    let hi = libm::pow(10.0, libm::ceil(libm::log10(hi))).max(lo * 10.0);
    // A hair beyond them: plotters drops a tick that rounding puts outside the range.
    let (lo, hi) = (lo * 0.999, hi * 1.001);
    let y = (lo..hi).log_scale();
    draw_chart(
        canvas,
        input,
        y,
        &LOSSES,
        "loss (log scale)",
        |v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.0e}").replace("e-", "e\u{2212}")
            }
        },
        |v| v.max(LOSS_FLOOR),
    )
}

/// Train / ID / OOD accuracy of both sides, 0 to 100%.
pub fn draw_accuracy(canvas: &HtmlCanvasElement, input: &CurveInput) -> Result<(), JsValue> {
    draw_chart(canvas, input, 0.0..1.0, &ACCURACIES, "accuracy", |v| format!("{:.0}%", v * 100.0), |v| v)
}

/// One chart: axes, the six lines and the shift markers.
fn draw_chart<Y>(
    canvas: &HtmlCanvasElement,
    input: &CurveInput,
    y_range: Y,
    metrics: &[Metric; 3],
    y_desc: &str,
    y_format: impl Fn(&f64) -> String,
    clamp: fn(f64) -> f64,
) -> Result<(), JsValue>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let s = input.scale.clamp(0.5, 4.0);
    let Some(root) = chart::white_area(canvas, s, 120.0, 80.0)? else { return Ok(()) };
    let x_max = input.max_step();
    let mut chart = chart::line_chart(&root, s, 0.0..x_max, y_range)?;
    chart::light_mesh(&mut chart.configure_mesh(), s, 6, 6)
        .x_desc("step")
        .y_desc(y_desc)
        .x_label_formatter(&|v| format_step(*v))
        .y_label_formatter(&y_format)
        .draw()
        .map_err(js_error)?;

    let width = (1.0 * s).round().max(1.0) as u32;
    for &step in input.shift_marks {
        let x = step as f64;
        let (y0, y1) = (chart.y_range().start, chart.y_range().end);
        chart
            .draw_series(DashedLineSeries::new(
                [(x, y0), (x, y1)],
                3.0 * s,
                3.0 * s,
                RGBColor(140, 140, 140).stroke_width(width),
            ))
            .map_err(js_error)?;
    }
    let line_width = (1.75 * s).round().max(1.0) as u32;
    for (side, run) in input.runs.iter().enumerate() {
        let style = rgb(palette::SIDE[side]).stroke_width(line_width);
        let series = |f: Metric| run.history.points.iter().map(move |m| (m.step as f64, clamp(f(m))));
        let series = &series;
        chart.draw_series(LineSeries::new(series(metrics[0]), style)).map_err(js_error)?;
        chart.draw_series(DashedLineSeries::new(series(metrics[1]), 7.0 * s, 4.0 * s, style)).map_err(js_error)?;
        chart.draw_series(DashedLineSeries::new(series(metrics[2]), 1.5 * s, 3.5 * s, style)).map_err(js_error)?;
    }
    Ok(())
}

/// 1500 -> "1.5k", 20000 -> "20k": the x axis stays narrow however long it trains.
pub fn format_step(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let k = v / 1000.0;
        if (k - k.round()).abs() < 1e-9 {
            format!("{k:.0}k")
        } else {
            format!("{k:.1}k")
        }
    } else {
        format!("{v:.0}")
    }
}
