//! The sharpness pictures: lambda_max of both sides over training, with the
//! edge-of-stability references (2 / lr, and (2 + 2 beta) / lr for momentum),
//! and the Hessian eigen-spectrum of both sides as histograms.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use wasm_bindgen::JsValue;
use web_sys::HtmlCanvasElement;

use crate::config::SideConfig;
use crate::sharpness_tracker::{stability_thresholds, SharpnessTracker, Spectrum};

use super::boundary::{js_error, rgb};
use super::chart;
use super::palette;

/// Bins of the spectrum histogram.
const BINS: usize = 40;

/// lambda_max (log axis) against step for both sides. Each side's
/// edge-of-stability threshold (`sharpness_tracker::stability_thresholds`: its
/// optimiser's, none where none bounds lambda_max) is drawn dashed at the
/// latest measurement's learning rate, in the side's colour.
pub fn draw_lambda_max(
    canvas: &HtmlCanvasElement,
    trackers: [&SharpnessTracker; 2],
    sides: [&SideConfig; 2],
    scale: f64,
) -> Result<(), JsValue> {
    let s = scale.clamp(0.5, 4.0);
    let Some(root) = chart::white_area(canvas, s, 120.0, 80.0)? else { return Ok(()) };
    let points = |t: &SharpnessTracker| -> Vec<(f64, f64)> {
        t.history
            .iter()
            .filter(|p| p.report.lambda_max.is_finite() && p.report.lambda_max > 0.0)
            .map(|p| (p.step as f64, p.report.lambda_max))
            .collect()
    };
    let series = trackers.map(points);
    let thresholds: Vec<Vec<(String, f64)>> = trackers
        .iter()
        .zip(sides)
        .map(|(t, side)| t.latest().map(|p| stability_thresholds(side, p.lr)).unwrap_or_default())
        .collect();
    let values = series.iter().flatten().map(|p| p.1).chain(thresholds.iter().flatten().map(|t| t.1));
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo / 1.5, hi * 1.5) } else { (0.1, 100.0) };
    let x_max = series.iter().flatten().map(|p| p.0).fold(10.0, f64::max);

    let mut chart = chart::line_chart(&root, s, 0.0..x_max, (lo..hi).log_scale())?;
    chart::light_mesh(&mut chart.configure_mesh(), s, 6, 5)
        .x_desc("step")
        .y_desc("λ_max (log)")
        .x_label_formatter(&|v| super::curves::format_step(*v))
        .y_label_formatter(&|v| short(*v))
        .draw()
        .map_err(js_error)?;
    let width = (1.75 * s).round().max(1.0) as u32;
    for (side, lines) in thresholds.iter().enumerate() {
        let style = rgb(palette::SIDE[side]).stroke_width(1);
        for (k, (_, v)) in lines.iter().enumerate() {
            let (dash, gap) = if k == 0 { (7.0 * s, 4.0 * s) } else { (1.5 * s, 3.5 * s) };
            chart.draw_series(DashedLineSeries::new([(0.0, *v), (x_max, *v)], dash, gap, style)).map_err(js_error)?;
        }
    }
    for (side, pts) in series.iter().enumerate() {
        let colour = rgb(palette::SIDE[side]);
        chart.draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(width))).map_err(js_error)?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, (2.0 * s) as i32, colour.filled()))).map_err(js_error)?;
    }
    Ok(())
}

/// Both sides' Hessian eigenvalues as histograms over one shared range, count
/// on a log axis (a bulk near zero and a few outliers is the usual picture:
/// the outliers are the sharp directions). Bars of the two sides sit side by
/// side within each bin.
/// `note`, if any, says why there is no spectrum (written over the empty chart).
pub fn draw_spectrum(
    canvas: &HtmlCanvasElement,
    spectra: [Option<&Spectrum>; 2],
    note: Option<&str>,
    scale: f64,
) -> Result<(), JsValue> {
    let s = scale.clamp(0.5, 4.0);
    let Some(root) = chart::white_area(canvas, s, 120.0, 80.0)? else { return Ok(()) };
    if let Some(note) = note {
        let (w, h) = root.dim_in_pixel();
        let style = (FontFamily::SansSerif, 12.0 * s).into_font().color(&RGBColor(90, 90, 90));
        let centred = style.pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(note.to_string(), (w as i32 / 2, h as i32 / 2), centred)).map_err(js_error)?;
        return Ok(());
    }
    let all = spectra.iter().flatten().flat_map(|sp| sp.eigenvalues.iter().copied()).filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (-1.0, 1.0) };
    let pad = (hi - lo) * 0.02;
    let (lo, hi) = (lo - pad, hi + pad);
    let bin = (hi - lo) / BINS as f64;
    let counts = spectra.map(|sp| {
        let mut c = [0usize; BINS];
        for v in sp.iter().flat_map(|sp| sp.eigenvalues.iter()).filter(|v| v.is_finite()) {
            c[(((v - lo) / bin) as usize).min(BINS - 1)] += 1;
        }
        c
    });
    let max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;

    let mut chart = chart::line_chart(&root, s, lo..hi, (0.8..max * 1.5).log_scale())?;
    chart::light_mesh(&mut chart.configure_mesh(), s, 6, 4)
        .x_desc("Hessian eigenvalue")
        .y_desc("count (log)")
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(js_error)?;
    for (side, c) in counts.iter().enumerate() {
        let colour = rgb(palette::SIDE[side]);
        let bars = c.iter().enumerate().filter(|(_, &n)| n > 0).map(|(k, &n)| {
            let x0 = lo + bin * (k as f64 + 0.5 * side as f64);
            Rectangle::new([(x0, 0.8), (x0 + bin * 0.5, n as f64)], colour.filled())
        });
        chart.draw_series(bars).map_err(js_error)?;
    }
    Ok(())
}

/// 12000 -> "1.2e4", 0.05 -> "0.05", 3 -> "3".
fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(0.01..10_000.0).contains(&a) {
        format!("{v:.0e}").replace("e-", "e\u{2212}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let t = format!("{v:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
