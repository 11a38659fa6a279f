//! Colours: Okabe-Ito (safe for the common colour-vision deficiencies) for
//! classes and sides, and the shading of the decision-boundary heatmap.
//!
//! Classes are blue and orange first (a diverging pair that stays distinct
//! for deuteranopes and protanopes), then the rest of Okabe-Ito. The two sides
//! of the comparison use two other Okabe-Ito colours, so a curve's colour never
//! looks like a class.

/// An sRGB colour.
pub type Rgb = [u8; 3];

/// Class colours, in class order (Okabe-Ito; at most 8 classes exist).
pub const CLASS: [Rgb; 8] = [
    [0x00, 0x72, 0xB2], // blue
    [0xE6, 0x9F, 0x00], // orange
    [0x00, 0x9E, 0x73], // bluish green
    [0xCC, 0x79, 0xA7], // reddish purple
    [0x56, 0xB4, 0xE9], // sky blue
    [0xD5, 0x5E, 0x00], // vermillion
    [0xF0, 0xE4, 0x42], // yellow
    [0x55, 0x55, 0x55], // dark grey (Okabe-Ito's black, softened)
];

/// The left (usually plain SGD) and right (usually SAM) sides in curves and headers.
pub const SIDE: [Rgb; 2] = [
    [0xD5, 0x5E, 0x00], // vermillion
    [0x00, 0x9E, 0x73], // bluish green
];

/// Heatmap colour where the model's output is not a number (a diverged run).
pub const UNDEFINED: Rgb = [0xC8, 0xC8, 0xC8];

/// The boundary line drawn over the heatmap.
pub const BOUNDARY_LINE: Rgb = [0x22, 0x22, 0x22];

/// How strongly a fully confident region is tinted. Below 1 so that the
/// points, drawn in the full class colour, stand out from their own region.
pub const MAX_TINT: f64 = 0.45;

/// The colour of class `class` (Okabe-Ito, repeating after the last one).
pub fn class_colour(class: usize) -> Rgb {
    CLASS[class % CLASS.len()]
}

/// The heatmap colour for one grid cell's class probabilities: the winning
/// class's colour, mixed with white according to confidence (white = a coin
/// toss between the top classes, full tint = certain).
pub fn heat_colour(probs: &[f64]) -> Rgb {
    let k = probs.len();
    let (mut best, mut p_best) = (0, f64::NEG_INFINITY);
    for (c, &p) in probs.iter().enumerate() {
        if !p.is_finite() {
            return UNDEFINED;
        }
        if p > p_best {
            (best, p_best) = (c, p);
        }
    }
    if k < 2 {
        return UNDEFINED;
    }
    // 1/k (uniform) maps to 0, 1 (certain) maps to 1.
    let chance = 1.0 / k as f64;
    let confidence = ((p_best - chance) / (1.0 - chance)).clamp(0.0, 1.0);
    tint(class_colour(best), MAX_TINT * confidence)
}

/// Mixes `colour` with white: `amount` 0 gives white, 1 the colour itself.
pub fn tint(colour: Rgb, amount: f64) -> Rgb {
    colour.map(|c| (255.0 - (255.0 - c as f64) * amount).round() as u8)
}

/// A CSS colour string, e.g. `rgb(0,114,178)` or with alpha `rgba(0,114,178,0.5)`.
pub fn css(colour: Rgb, alpha: f64) -> String {
    let [r, g, b] = colour;
    if alpha >= 1.0 {
        format!("rgb({r},{g},{b})")
    } else {
        format!("rgba({r},{g},{b},{alpha})")
    }
}

/// Mixes `colour` with black: `amount` 0 keeps it, 1 gives black. For outlines
/// that must stay visible on their own class's tint.
pub fn shade(colour: Rgb, amount: f64) -> Rgb {
    colour.map(|c| (c as f64 * (1.0 - amount)).round() as u8)
}

/// SAM's perturbed points w + e on landscape pictures (red, as in the CLI's
/// PNGs; drawn as crosses, so shape tells them apart too).
pub const PERTURBED: Rgb = [0xFF, 0x3B, 0x3B];

/// matplotlib's viridis (perceptually uniform, readable in greyscale and for
/// every colour-vision deficiency) at nine evenly spaced stops.
const VIRIDIS: [Rgb; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// Viridis at `t` in [0, 1] (dark purple = low loss, yellow = high), linear between stops.
pub fn viridis(t: f64) -> Rgb {
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [0, 1, 2].map(|k| (a[k] as f64 + (b[k] as f64 - a[k] as f64) * f).round() as u8)
}
